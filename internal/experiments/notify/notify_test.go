package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imet/internal/base/config"
)

// fakeTelegram is a Bot API server on loopback that records sendMessage.
type fakeTelegram struct {
	mu    sync.Mutex
	token string
	msgs  []map[string]string
	fail  bool
}

func (f *fakeTelegram) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/bot"+f.token+"/sendMessage" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
		return
	}
	fields := map[string]string{}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			fields[p.FormName()] = string(b)
		}
	default:
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		for k, v := range m {
			b, _ := json.Marshal(v)
			fields[k] = strings.Trim(string(b), `"`)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
		return
	}
	f.msgs = append(f.msgs, fields)
	io.WriteString(w, `{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":42,"type":"private"},"text":"x"}}`)
}

func (f *fakeTelegram) texts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.msgs {
		out = append(out, m["text"])
	}
	return out
}

const token = "123456:TEST-TOKEN-abcdef"

func cv(v float64) *float64 { return &v }

func TestTelegramLifecycle(t *testing.T) {
	fake := &fakeTelegram{token: token}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	t.Setenv("IMET_TELEGRAM_TOKEN", token)
	cfg := DefaultConfig()
	cfg.Telegram.ChatID = "42"
	cfg.Telegram.ServerURL = srv.URL
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled() {
		t.Fatal("token in the environment did not enable Telegram")
	}
	ctx := context.Background()
	events := []Event{
		{Kind: Started, RunID: 7, Run: "r50"},
		{Kind: Checkpoint, RunID: 7, Run: "r50", Epoch: 1}, // muted by default
		{Kind: Finished, RunID: 7, Run: "r50", Elapsed: 3723 * time.Second, CVF2: cv(0.6123)},
		{Kind: Failed, RunID: 8, Run: "r101", Elapsed: time.Minute, Err: errors.New("CUDA out of memory"), LogTail: []string{"epoch 2 step 100", "RuntimeError: CUDA out of memory"}},
		{Kind: Finished, RunID: 9, Run: "se", Err: errors.New("writing submission: disk full")},
	}
	for _, e := range events {
		if err := n.Notify(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got := fake.texts()
	if len(got) != 4 {
		t.Fatalf("got %d messages, want 4 (checkpoint muted): %q", len(got), got)
	}
	for _, m := range fake.msgs {
		if m["chat_id"] != "42" {
			t.Errorf("chat_id %q", m["chat_id"])
		}
	}
	checks := []struct {
		msg          string
		want, banned []string
	}{
		{got[0], []string{"r50", "started"}, []string{"FAILED"}},
		{got[1], []string{"finished", "1h2m3s", "CV F2 0.6123"}, []string{"FAILED"}},
		{got[2], []string{"FAILED", "CUDA out of memory", "epoch 2 step 100", "RuntimeError"}, []string{"finished", "✅"}},
		{got[3], []string{"FAILED", "disk full"}, []string{"finished", "✅"}},
	}
	for _, c := range checks {
		for _, w := range c.want {
			if !strings.Contains(c.msg, w) {
				t.Errorf("message %q lacks %q", c.msg, w)
			}
		}
		for _, b := range c.banned {
			if strings.Contains(c.msg, b) {
				t.Errorf("message %q contains %q", c.msg, b)
			}
		}
	}
}

func TestTelegramErrorHidesToken(t *testing.T) {
	fake := &fakeTelegram{token: token, fail: true}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	tg, err := NewTelegram(token, "42", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	err = NewWith(DefaultConfig(), tg).Notify(context.Background(), Event{Kind: Failed, Run: "x"})
	if err == nil || !strings.Contains(err.Error(), "telegram") {
		t.Fatalf("server error not reported: %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestTokenFromFile(t *testing.T) {
	fake := &fakeTelegram{token: token}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "tg.token")
	os.WriteFile(file, []byte(token+"\n"), 0o600)
	t.Setenv("IMET_TELEGRAM_TOKEN", "")
	cfg := DefaultConfig()
	cfg.Telegram = TelegramConfig{ChatID: "@imet", TokenEnv: "IMET_TELEGRAM_TOKEN", TokenFile: file, ServerURL: srv.URL}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), Event{Kind: Finished, Run: "x"}); err != nil {
		t.Fatal(err)
	}
	if len(fake.texts()) != 1 || fake.msgs[0]["chat_id"] != "@imet" {
		t.Errorf("messages %v", fake.msgs)
	}
	// The configuration as logged and stored names the file, never the token.
	y, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), token) || strings.Contains(string(y), "TEST-TOKEN") {
		t.Errorf("resolved config contains the token:\n%s", y)
	}
}

func TestMissingSecretsDisable(t *testing.T) {
	t.Setenv("IMET_TELEGRAM_TOKEN", "")
	t.Setenv("IMET_NOTIFY_URLS", "")
	n, err := New(DefaultConfig())
	if err != nil || n.Enabled() {
		t.Fatalf("New without secrets: %v, enabled %v", err, n.Enabled())
	}
	if err := n.Notify(context.Background(), Event{Kind: Failed}); err != nil {
		t.Error(err)
	}
	cfg := DefaultConfig()
	cfg.Telegram.TokenFile = filepath.Join(t.TempDir(), "missing")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing token file: %v", err)
	}
	// A token without a chat id: TestTelegramTokenWithoutChatIDWarns.
}

func TestWebhookViaShoutrrr(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		if r.URL.Path != "/hooks/imet" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	t.Setenv("IMET_TELEGRAM_TOKEN", "")
	t.Setenv("IMET_NOTIFY_URLS", "generic://"+host+"/hooks/imet?template=json&disabletls=yes")
	n, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(context.Background(), Event{Kind: Failed, RunID: 3, Run: "r50", Err: errors.New("NaN loss"), LogTail: []string{"loss nan"}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || !strings.Contains(bodies[0]["message"], "FAILED") || !strings.Contains(bodies[0]["message"], "NaN loss") {
		t.Fatalf("webhook bodies %v", bodies)
	}

	// A webhook that answers with an error is reported, without its URL.
	t.Setenv("IMET_NOTIFY_URLS", "generic://"+host+"/wrong/path?template=json&disabletls=yes")
	n, _ = New(DefaultConfig())
	err = n.Notify(context.Background(), Event{Kind: Finished})
	if err == nil {
		t.Fatal("404 from webhook not reported")
	}
	if strings.Contains(err.Error(), "/wrong/path") {
		t.Errorf("error leaks the URL: %v", err)
	}
}

func TestLongLogTailFitsTelegram(t *testing.T) {
	var tail []string
	for i := 0; i < 1000; i++ {
		tail = append(tail, strings.Repeat("x", 50))
	}
	tail = append(tail, "the last line")
	text := Event{Kind: Failed, Err: errors.New("boom"), LogTail: tail}.Text()
	if len(text) > 4096 || !strings.HasSuffix(text, "the last line") || !strings.Contains(text, "boom") {
		t.Errorf("len %d, tail %q", len(text), text[len(text)-30:])
	}
}

// An interrupted run (time budget, signal) says why and the exact command
// that continues it, and is sent even with every optional event muted.
func TestInterruptedSaysWhyAndHowToResume(t *testing.T) {
	var mu sync.Mutex
	var msgs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		msgs = append(msgs, m["message"])
		mu.Unlock()
	}))
	defer srv.Close()
	t.Setenv("IMET_TELEGRAM_TOKEN", "")
	t.Setenv("IMET_NOTIFY_URLS", "generic://"+strings.TrimPrefix(srv.URL, "http://")+"/hook?template=json&disabletls=yes")
	cfg := DefaultConfig()
	cfg.OnStart = false
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resume := "imet train --resume runs/r50/fold0 --time-budget 8h30m0s"
	for _, reason := range []string{"SIGTERM", "time-budget"} {
		e := Event{Kind: Interrupted, RunID: 4, Run: "r50", Elapsed: 90 * time.Second, Reason: reason, Resume: resume}
		if err := n.Notify(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 2 {
		t.Fatalf("messages %q, want 2", msgs)
	}
	for i, reason := range []string{"SIGTERM", "time-budget"} {
		for _, want := range []string{"run 4", "interrupted", "(" + reason + ")", "1m30s", "\n" + resume} {
			if !strings.Contains(msgs[i], want) {
				t.Errorf("message %q lacks %q", msgs[i], want)
			}
		}
		for _, banned := range []string{"FAILED", "finished"} {
			if strings.Contains(msgs[i], banned) {
				t.Errorf("message %q contains %q", msgs[i], banned)
			}
		}
	}
}

// A failure whose error is a panic with its stack still fits in one
// Telegram message, keeping the start of the error and the log's end.
func TestLongErrorFitsTelegram(t *testing.T) {
	stack := "panic: index out of range [3] with length 3\n\ngoroutine 1 [running]:\n" + strings.Repeat("imet/internal/training/train.(*trainer).epoch(...)\n\t/src/train.go:300 +0x1f\n", 200)
	text := Event{Kind: Failed, Err: errors.New(stack), LogTail: []string{"event=step", "the last line"}}.Text()
	if len(text) > 4096 || !strings.Contains(text, "panic: index out of range") || !strings.HasSuffix(text, "the last line") {
		t.Errorf("len %d:\n%s", len(text), text)
	}
}

// IMET_TELEGRAM_TOKEN exported without a notify file (so without a chat
// id) made every train fail; it now leaves telegram off with one warning
// that names the variable and not the token, and other services still
// send.
func TestTelegramTokenWithoutChatIDWarns(t *testing.T) {
	t.Setenv("IMET_TELEGRAM_TOKEN", token)
	t.Setenv("IMET_NOTIFY_URLS", "")
	n, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() {
		t.Error("telegram enabled without a chat id")
	}
	w := n.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "IMET_TELEGRAM_TOKEN is set but telegram.chat_id is empty") || strings.Contains(w[0], token) {
		t.Fatalf("warnings %q", w)
	}
	if err := n.Notify(context.Background(), Event{Kind: Failed, Run: "x"}); err != nil {
		t.Fatal(err)
	}
}
