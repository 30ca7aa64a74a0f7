package main

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A notification that fails leaves its secrets nowhere: not on the stderr
// of imet cv, not in the train.log of the folds it trains in child
// processes, not in the registry's files. The services are generic
// webhooks on loopback (their URLs carry ?token=), one answering 500 and
// one refusing the connection (the error quotes the URL), and Discord
// (its token moves into the path of the HTTPS URL Shoutrrr posts to),
// reached through a proxy on loopback that refuses it, so nothing leaves
// the machine.
func TestFailedNotificationsLeakNoSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the imet binary")
	}
	bin := filepath.Join(t.TempDir(), "imet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				http.ReadRequest(bufio.NewReader(c))
				c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
			}()
		}
	}()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	const webhookSecret, refusedSecret, discordSecret = "WEBHOOKQUERYSECRET42", "REFUSEDQUERYSECRET42", "DISCORDPATHSECRET42"
	urls := "generic://" + strings.TrimPrefix(failing.URL, "http://") + "/hook?token=" + webhookSecret + "&template=json&disabletls=yes" +
		" generic://" + dead.Addr().String() + "/hook?token=" + refusedSecret + "&disabletls=yes" +
		" discord://" + discordSecret + "@123456789012"

	cfg := tinyRun(t)
	reg := filepath.Join(t.TempDir(), "registry.db")
	out := filepath.Join(t.TempDir(), "cv")
	cmd := exec.Command(bin, "cv", "--config", cfg, "--out", out, "--parallel", "2", "--registry", reg)
	cmd.Env = append(os.Environ(), "IMET_NOTIFY_URLS="+urls, "IMET_TELEGRAM_TOKEN=", "IMET_REGISTRY="+reg,
		"HTTPS_PROXY=http://"+proxy.Addr().String(), "https_proxy=", "NO_PROXY=", "no_proxy=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("imet cv: %v\n%s", err, &stderr)
	}
	outputs := map[string]string{"stdout": stdout.String(), "stderr": stderr.String()}
	logs, _ := filepath.Glob(filepath.Join(out, "fold*", "train.log"))
	if len(logs) != 3 {
		t.Fatalf("train.log files %v, want one per fold", logs)
	}
	dbs, _ := filepath.Glob(reg + "*") // the database and its WAL
	for _, p := range append(logs, dbs...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		outputs[p] = string(b)
	}
	// The failures are reported, in the parent and in every child.
	for _, name := range append([]string{"stderr"}, logs...) {
		for _, want := range []string{"generic webhook", "500", "connection refused", "discord", "Forbidden"} {
			if !strings.Contains(outputs[name], want) {
				t.Errorf("%s does not report the failure (%q):\n%s", name, want, outputs[name])
			}
		}
	}
	for name, text := range outputs {
		for _, s := range []string{webhookSecret, refusedSecret, discordSecret} {
			if strings.Contains(text, s) {
				i := strings.Index(text, s)
				t.Errorf("%s shows %s: …%s…", name, s, text[max(0, i-120):i+len(s)])
			}
		}
	}
}
