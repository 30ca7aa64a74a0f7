package notify

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"

	"imet/internal/base/redact"
)

// refusingProxy is an HTTP proxy on loopback that refuses every CONNECT,
// so that a service with a fixed public endpoint (Discord) fails at once
// and no request leaves the machine.
func refusingProxy(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
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
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// A notification that cannot be delivered is reported without any of the
// secrets it was sent with: the generic webhook's ?token= (answered with a
// server error, and refused at the connection), Discord's token (which
// Shoutrrr moves into the path of the HTTPS URL it posts to), a Gotify
// token in the path and the Telegram bot token.
func TestFailedNotificationHidesEverySecret(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	// Discord's client uses the default transport; send it through the
	// refusing proxy instead of the Internet.
	saved := http.DefaultTransport
	proxy := refusingProxy(t)
	http.DefaultTransport = &http.Transport{Proxy: func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == "discord.com" {
			return proxy, nil
		}
		return nil, nil
	}}
	defer func() { http.DefaultTransport = saved }()

	secrets := []string{"GENERICWEBHOOKSECRET", "REFUSEDWEBHOOKSECRET", "DISCORDWEBHOOKTOKEN1", "GotifyAppTokenX1", "987654321:TELEGRAMBOTTOKENabcdefghijklmnopqrs"}
	urls := []string{
		"generic://" + strings.TrimPrefix(failing.URL, "http://") + "/hook?token=" + secrets[0] + "&disabletls=yes",
		"generic://" + deadAddr + "/hook?token=" + secrets[1] + "&disabletls=yes",
		"discord://" + secrets[2] + "@123456789012",
		"gotify://" + deadAddr + "/" + secrets[3] + "?disabletls=yes",
	}
	t.Setenv("IMET_NOTIFY_URLS", strings.Join(urls, " "))
	t.Setenv("IMET_TELEGRAM_TOKEN", secrets[4])
	cfg := DefaultConfig()
	cfg.Telegram.ChatID = "42"
	cfg.Telegram.ServerURL = "http://" + deadAddr
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(context.Background(), Event{Kind: Failed, Run: "x"})
	if err == nil {
		t.Fatal("no error from services that all fail")
	}
	msg := err.Error()
	for _, want := range []string{"generic webhook", "500", "connection refused", "discord", "telegram"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error shows %s:\n%s", s, msg)
		}
	}
}

// Every service Shoutrrr routes is known to the redactor as a notification
// scheme, so that a newer Shoutrrr cannot bring a URL form whose keys are
// not masked by their shape.
func TestRedactorKnowsEveryShoutrrrScheme(t *testing.T) {
	for _, s := range (&router.ServiceRouter{}).ListServices() {
		if !redact.IsNotifyScheme(s) {
			t.Errorf("scheme %q of Shoutrrr is not in redact.NotifySchemes", s)
		}
	}
	if !slices.IsSorted(redact.NotifySchemes) {
		t.Error("redact.NotifySchemes is not sorted")
	}
}
