// promlint checks Prometheus text exposition read from stdin the way `promtool check metrics` does:
// it must parse (expfmt, the reference parser) and pass client_golang's promlint rules.
// Exit 0 and no output when clean; otherwise one problem per line and exit 1.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func main() {
	problems, err := promlint.New(os.Stdin).Lint()
	if err != nil {
		fmt.Println("parse error:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Printf("%s: %s\n", p.Metric, p.Text)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}
