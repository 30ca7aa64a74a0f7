package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"imet/internal/experiments/dashboard"
)

type dashboardCmd struct {
	registryFlag
	Addr      string        `help:"Address to listen on. Anything but loopback requires a token." default:"127.0.0.1:8080"`
	TokenEnv  string        `help:"Environment variable holding the access token (never pass a token on the command line: it shows in ps)." default:"IMET_DASHBOARD_TOKEN"`
	TokenFile string        `help:"File holding the access token, read when the variable is empty." type:"path"`
	Refresh   time.Duration `help:"How often pages of running runs reload." default:"10s"`
}

func init() {
	register("dashboard", "Serve a local web page of runs, their curves and comparisons.", "Experiments", &dashboardCmd{})
}

func (c *dashboardCmd) token() (string, error) {
	if t := strings.TrimSpace(os.Getenv(c.TokenEnv)); t != "" {
		return t, nil
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

func (c *dashboardCmd) Run(g *Globals) error {
	token, err := c.token()
	if err != nil {
		return err
	}
	if err := dashboard.CheckBind(c.Addr, token); err != nil {
		return err
	}
	db, err := c.open()
	if err != nil {
		return err
	}
	defer db.Close()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !g.Quiet {
		auth := ""
		if token != "" {
			auth = " (token required: open it once with ?token=…)"
		}
		fmt.Fprintf(g.Stderr, "dashboard of %s on http://%s/%s\n", db.Path(), ln.Addr(), auth)
	}
	return dashboard.Serve(ctx, ln, dashboard.New(db, dashboard.Options{Token: token, Refresh: c.Refresh, RecordedBy: recordingCommands()}))
}
