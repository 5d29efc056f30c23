import Database from 'better-sqlite3';

/**
 * Opens (creating if missing) a SQLite file that must keep every commit across a crash or power loss: WAL, and
 * synchronous=FULL — in WAL mode NORMAL may roll back the last committed transactions on power loss, which
 * would take back answers already given (an applied offset, a 202 for a buffered write). One writer per file;
 * busy_timeout only covers a reader such as a backup. Closed again if a pragma fails.
 */
export function openDurable(path: string): Database.Database {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}
