/**
 * Lagoon's typed client: `import { LagoonClient } from 'lagoon/client'`. Runs wherever `fetch` does (Node 20+,
 * browsers, Deno, Bun); it loads nothing else at run time. See docs/client.md.
 */
export { LagoonClient, type LagoonClientOptions } from './client.js';
export { ROUTES, SHAPES } from './contract.js';
export { LagoonError } from './errors.js';
export { decodeToken, mergeTokens } from './session.js';
export type * from './types.js';
