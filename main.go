// Command cliq runs AI-agent pipelines from a terminal and serves them over
// HTTP and WebSocket.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"cliq/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
