package redact

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Every part of a notification URL that is a key is masked by its shape,
// registered or not, while the service and the server stay readable.
func TestStringMasksURLShapes(t *testing.T) {
	r := New()
	for _, tc := range []struct{ in, want string }{
		{`Post "http://127.0.0.1:4000/hook?token=s3cr3t&disabletls=yes": refused`,
			`Post "http://127.0.0.1:4000/hook?token=<redacted>&disabletls=<redacted>": refused`},
		{"generic://hooks.example.com/a/b?token=x", "generic://hooks.example.com/<redacted>/<redacted>?token=<redacted>"},
		{"generic+https://hooks.example.com/k3y", "generic+https://hooks.example.com/<redacted>"},
		{"discord://tok3n@123456789", "discord://<redacted>@<redacted>"},
		{"slack://hook:AAAA-BBBB-CCCC@webhook", "slack://<redacted>@<redacted>"},
		{"slack://T000/B000/XXXX", "slack://<redacted>/<redacted>/<redacted>"},
		{"telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@chan", "telegram://<redacted>@<redacted>?chats=<redacted>"},
		{"pushover://shoutrrr:apiToken@userKey/?devices=d1", "pushover://<redacted>@<redacted>/?devices=<redacted>"},
		{"gotify://gotify.example.com:8443/AzyoeNS.D4iJLVa", "gotify://gotify.example.com:8443/<redacted>"},
		{"ntfy://user:pw@localhost:8080/topic", "ntfy://<redacted>@localhost:8080/<redacted>"},
		{"ifttt://k3y/?events=e", "ifttt://<redacted>/?events=<redacted>"},
		{"smtp://u:p@[::1]:25/?from=a@b", "smtp://<redacted>@[::1]:25/?from=<redacted>"},
		{"url: https://user:pa55@example.com/x", "url: https://<redacted>@example.com/x"},
		{"https://discord.com/api/webhooks/123/aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "https://discord.com/api/webhooks/123/<redacted>"},
		{"https://api.telegram.org/bot110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", "https://api.telegram.org/<redacted>/sendMessage"},
		{"bare 110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw here", "bare <redacted> here"},
		{"Authorization: Bearer abcdefgh12345", "Authorization: Bearer <redacted>"},
		// Ordinary text and file URLs stay as they are.
		{"https://download.pytorch.org/models/resnet50-19c8e357.pth", "https://download.pytorch.org/models/resnet50-19c8e357.pth"},
		{"event=step loss=0.5 path=runs/x/fold0/step-000002.ckpt", "event=step loss=0.5 path=runs/x/fold0/step-000002.ckpt"},
	} {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// A registered URL's keys are masked in the other forms a service turns
// them into, such as the HTTPS URL that Shoutrrr derives from a Discord
// URL, or a token quoted on its own.
func TestRegisteredURLPartsMaskedEverywhere(t *testing.T) {
	r := New()
	r.AddURL("discord://DISCORDTOKEN123@987654")
	r.AddURL("generic://127.0.0.1:9/hook?token=GENERICSECRET&disabletls=yes")
	r.AddURL("gotify://localhost/GOTIFYTOKEN")
	for _, in := range []string{
		`Post "https://discord.com/api/webhooks/987654/DISCORDTOKEN123": no such host`,
		`invalid token: "GOTIFYTOKEN"`,
		`the key was GENERICSECRET`,
		`escaped: token%3DGENERICSECRET`,
	} {
		got := r.String(in)
		for _, s := range []string{"DISCORDTOKEN123", "GENERICSECRET", "GOTIFYTOKEN"} {
			if strings.Contains(got, s) {
				t.Errorf("String(%q) = %q keeps %s", in, got, s)
			}
		}
	}
	// Short parts are ordinary words: "hook" and "yes" are not masked in
	// prose.
	if got := r.String("the hook said yes"); got != "the hook said yes" {
		t.Errorf("prose garbled: %q", got)
	}
}

func TestConfig(t *testing.T) {
	r := New()
	for _, tc := range []struct{ in, want string }{
		{"notify:\n  telegram_token: 123:ABC\n", "notify:\n  telegram_token: <redacted>\n"},
		{"token_env: IMET_TELEGRAM_TOKEN\n", "token_env: IMET_TELEGRAM_TOKEN\n"},
		{"api_key: \"k\"\npassword: hunter2 # old\n", "api_key: <redacted>\npassword: <redacted>\n"},
		{"url: https://user:pa55@example.com/x\n", "url: https://<redacted>@example.com/x\n"},
		{"optim:\n  lr: 0.001\n", "optim:\n  lr: 0.001\n"},
	} {
		if got := r.Config(tc.in); got != tc.want {
			t.Errorf("Config(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	r := New()
	r.Add("SECRETSECRET")
	if r.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	plain := errors.New("plain")
	if r.Error(plain) != plain {
		t.Error("an error with nothing to mask was replaced")
	}
	err := fmt.Errorf("notify: %w", errors.New("sent SECRETSECRET"))
	if got := r.Error(err).Error(); got != "notify: sent <redacted>" {
		t.Errorf("got %q", got)
	}
}

// A secret split over two writes is masked, and the unfinished last line
// comes out on Flush.
func TestWriterSeesSplitSecret(t *testing.T) {
	var buf bytes.Buffer
	w := &Writer{r: New(), w: &buf}
	w.r.Add("SPLITSECRET1")
	fmt.Fprint(w, "a SPLIT")
	fmt.Fprint(w, "SECRET1 b\nnext SPLITSEC")
	if got := buf.String(); got != "a <redacted> b\n" {
		t.Errorf("before flush: %q", got)
	}
	fmt.Fprint(w, "RET1")
	w.Flush()
	if got := buf.String(); got != "a <redacted> b\nnext <redacted>" {
		t.Errorf("after flush: %q", got)
	}
	if _, err := w.Stat(); err == nil {
		t.Error("Stat of a buffer succeeded")
	}
}
