// Package notify tells a person that a run started, saved a checkpoint,
// finished, failed or was interrupted (with the command that resumes it),
// on Telegram or any service Shoutrrr knows (generic webhooks, Slack,
// Discord, ...). A failure is always reported as a failure:
// the event kind decides the wording, and a Finished event carrying an
// error is reported as failed.
//
// Secrets (the bot token, webhook URLs with their keys) are read from the
// environment or from a file named in the configuration, never from the
// configuration itself, which the registry stores with every run. Every
// secret found is registered with package redact, which masks it in every
// error this package returns and in every log line and registry row the
// process writes.
package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-telegram/bot"
	"github.com/nicholas-fedor/shoutrrr"
	"github.com/nicholas-fedor/shoutrrr/pkg/router"

	"imet/internal/base/redact"
)

// Config says where and when to notify. It holds no secret, only where to
// find one.
type Config struct {
	OnStart      bool           `yaml:"on_start" doc:"Notify when a run starts."`
	OnCheckpoint bool           `yaml:"on_checkpoint" doc:"Notify on every saved checkpoint (off by default: it is chatty)."`
	Telegram     TelegramConfig `yaml:"telegram" doc:"Telegram bot settings; used when the token is found."`
	URLsEnv      string         `yaml:"urls_env" doc:"Environment variable holding Shoutrrr URLs (Slack, Discord, generic webhooks), separated by spaces or newlines."`
	URLsFile     string         `yaml:"urls_file" doc:"File holding Shoutrrr URLs, one per line; read when the variable in urls_env is empty."`
}

// TelegramConfig locates the Telegram bot and chat.
type TelegramConfig struct {
	ChatID    string `yaml:"chat_id" doc:"Chat to write to: a numeric id or @channelname."`
	TokenEnv  string `yaml:"token_env" doc:"Environment variable holding the bot token."`
	TokenFile string `yaml:"token_file" doc:"File holding the bot token; read when the variable in token_env is empty."`
	ServerURL string `yaml:"server_url" doc:"Bot API server, for a self-hosted server; empty for api.telegram.org."`
}

// DefaultConfig returns the defaults: notify on start, finish and failure,
// secrets in IMET_TELEGRAM_TOKEN and IMET_NOTIFY_URLS.
func DefaultConfig() Config {
	return Config{
		OnStart:  true,
		Telegram: TelegramConfig{TokenEnv: "IMET_TELEGRAM_TOKEN"},
		URLsEnv:  "IMET_NOTIFY_URLS",
	}
}

// Kind is what happened to a run.
type Kind int

// The events a run reports.
const (
	Started Kind = iota
	Checkpoint
	Finished
	Failed
	// Interrupted: the run stopped cleanly before completing (time budget,
	// signal) and can be resumed.
	Interrupted
)

// Event is one thing worth telling about a run.
type Event struct {
	Kind    Kind
	RunID   int64
	Run     string        // run name
	Host    string        // machine it runs on
	Elapsed time.Duration // since start
	CVF2    *float64      // Finished: the cross-validated F2, nil if none
	Epoch   float64       // Checkpoint: the epoch it was saved at
	Path    string        // Checkpoint: where
	Err     error         // Failed: why
	LogTail []string      // Failed: the last lines of the log
	Reason  string        // Interrupted: why, e.g. "time-budget", "SIGTERM"
	Resume  string        // Interrupted: the command that continues the run
}

// maxText keeps a message under Telegram's 4096-character limit.
const maxText = 3800

// Text renders the event as a message.
func (e Event) Text() string {
	var b strings.Builder
	name := fmt.Sprintf("run %d %q", e.RunID, e.Run)
	if e.Host != "" {
		name += " on " + e.Host
	}
	kind := e.Kind
	if kind == Finished && e.Err != nil {
		kind = Failed // an error is never good news
	}
	switch kind {
	case Started:
		fmt.Fprintf(&b, "▶ %s started", name)
	case Checkpoint:
		fmt.Fprintf(&b, "💾 %s saved a checkpoint at epoch %.2f", name, e.Epoch)
		if e.Path != "" {
			fmt.Fprintf(&b, ": %s", e.Path)
		}
		fmt.Fprintf(&b, " (%s in)", e.Elapsed.Round(time.Second))
	case Finished:
		fmt.Fprintf(&b, "✅ %s finished in %s", name, e.Elapsed.Round(time.Second))
		if e.CVF2 != nil {
			fmt.Fprintf(&b, ", CV F2 %.4f", *e.CVF2)
		}
	case Interrupted:
		fmt.Fprintf(&b, "⏸ %s interrupted (%s) after %s; resume with:\n%s", name, e.Reason, e.Elapsed.Round(time.Second), e.Resume)
	case Failed:
		msg := "no error message"
		if e.Err != nil {
			msg = e.Err.Error()
		}
		// A panic's message carries its whole stack: keep its start (the
		// panic and the innermost frames) and leave room for the log.
		if cut := maxText / 2; len(msg) > cut {
			for cut > 0 && !utf8.RuneStart(msg[cut]) {
				cut--
			}
			msg = msg[:cut] + "…"
		}
		fmt.Fprintf(&b, "❌ %s FAILED after %s: %s", name, e.Elapsed.Round(time.Second), msg)
		if len(e.LogTail) > 0 {
			tail := strings.Join(e.LogTail, "\n")
			if room := maxText - b.Len() - 20; len(tail) > room && room > 0 {
				tail = "…" + tail[len(tail)-room:]
			}
			fmt.Fprintf(&b, "\n\nlast log lines:\n%s", tail)
		}
	}
	return b.String()
}

// Sender delivers a message to one service.
type Sender interface {
	Send(ctx context.Context, text string) error
	Name() string
}

// Notifier sends events to every configured service.
type Notifier struct {
	cfg      Config
	senders  []Sender
	warnings []string
}

// New builds a Notifier from the configuration and the secrets it points
// to. With no secret found it returns a Notifier that sends nothing, so
// that notifications stay optional. A telegram token without a chat id
// (IMET_TELEGRAM_TOKEN exported for another project, say) leaves telegram
// off with a warning (Warnings) rather than failing every command that
// records a run.
func New(cfg Config) (*Notifier, error) {
	n := &Notifier{cfg: cfg}
	token, err := secret(cfg.Telegram.TokenEnv, cfg.Telegram.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("notify: telegram token: %w", err)
	}
	if token != "" {
		if cfg.Telegram.ChatID == "" {
			from := "the telegram token file " + cfg.Telegram.TokenFile
			if cfg.Telegram.TokenEnv != "" && strings.TrimSpace(os.Getenv(cfg.Telegram.TokenEnv)) != "" {
				from = cfg.Telegram.TokenEnv
			}
			n.warnings = append(n.warnings, fmt.Sprintf("warning: notify: %s is set but telegram.chat_id is empty (set it in a --notify-file): telegram notifications are off", from))
		} else {
			t, err := NewTelegram(token, cfg.Telegram.ChatID, cfg.Telegram.ServerURL)
			if err != nil {
				return nil, err
			}
			n.senders = append(n.senders, t)
		}
	}
	urls, err := secret(cfg.URLsEnv, cfg.URLsFile)
	if err != nil {
		return nil, fmt.Errorf("notify: urls: %w", err)
	}
	if fields := strings.Fields(urls); len(fields) > 0 {
		s, err := NewShoutrrr(fields...)
		if err != nil {
			return nil, err
		}
		n.senders = append(n.senders, s)
	}
	return n, nil
}

// NewWith builds a Notifier over given senders, e.g. for tests or for a
// service configured in code.
func NewWith(cfg Config, senders ...Sender) *Notifier {
	return &Notifier{cfg: cfg, senders: senders}
}

// Warnings are the problems New worked around, each a line for the
// command's stderr.
func (n *Notifier) Warnings() []string {
	if n == nil {
		return nil
	}
	return n.warnings
}

// Enabled reports whether any service is configured.
func (n *Notifier) Enabled() bool { return n != nil && len(n.senders) > 0 }

// Notify sends the event to every service, unless the configuration mutes
// its kind (start and checkpoint events are optional; finish, failure and
// interruption are always sent). It tries every service and joins their errors; callers
// normally log the error and carry on, as a lost message must not kill a
// run.
func (n *Notifier) Notify(ctx context.Context, e Event) error {
	if !n.Enabled() {
		return nil
	}
	if (e.Kind == Started && !n.cfg.OnStart) || (e.Kind == Checkpoint && !n.cfg.OnCheckpoint) {
		return nil
	}
	// The log tail may quote a secret too.
	text := redact.String(e.Text())
	var errs []error
	for _, s := range n.senders {
		if err := s.Send(ctx, text); err != nil {
			errs = append(errs, fmt.Errorf("notify %s: %w", s.Name(), err))
		}
	}
	return redact.Error(errors.Join(errs...))
}

// secret reads a value from the environment variable env, else from file.
func secret(env, file string) (string, error) {
	if env != "" {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v, nil
		}
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// Telegram sends messages through a Telegram bot.
type Telegram struct {
	bot    *bot.Bot
	chatID string
}

// NewTelegram makes a Telegram sender. serverURL overrides the Bot API
// server ("" for https://api.telegram.org), e.g. for a local fake in tests.
func NewTelegram(token, chatID, serverURL string) (*Telegram, error) {
	redact.Add(token)
	opts := []bot.Option{bot.WithSkipGetMe()} // no network call until there is news
	if serverURL != "" {
		opts = append(opts, bot.WithServerURL(strings.TrimRight(serverURL, "/")))
	}
	b, err := bot.New(token, opts...)
	if err != nil {
		return nil, fmt.Errorf("notify: telegram: %s", redact.String(err.Error()))
	}
	return &Telegram{bot: b, chatID: chatID}, nil
}

// Name implements Sender.
func (t *Telegram) Name() string { return "telegram" }

// Send implements Sender.
func (t *Telegram) Send(ctx context.Context, text string) error {
	_, err := t.bot.SendMessage(ctx, &bot.SendMessageParams{ChatID: t.chatID, Text: text})
	if err != nil {
		// The library's errors may quote the request URL, which holds the token.
		return errors.New(redact.String(err.Error()))
	}
	return nil
}

// Shoutrrr sends messages to services named by Shoutrrr URLs, e.g.
// "slack://…", "discord://…" or "generic://host/path" for any webhook.
type Shoutrrr struct {
	router *router.ServiceRouter
	urls   []string
}

// NewShoutrrr makes a Shoutrrr sender for the given URLs.
func NewShoutrrr(urls ...string) (*Shoutrrr, error) {
	// Registered before anything can fail: a service's errors quote its URL,
	// or the URL it derives from it, or a key alone.
	for _, u := range urls {
		redact.AddURL(u)
	}
	r, err := shoutrrr.CreateSender(urls...)
	if err != nil {
		return nil, fmt.Errorf("notify: invalid notification URL: %s", redact.String(err.Error()))
	}
	return &Shoutrrr{router: r, urls: urls}, nil
}

// Name implements Sender.
func (s *Shoutrrr) Name() string { return fmt.Sprintf("shoutrrr (%d URLs)", len(s.urls)) }

// Send implements Sender.
func (s *Shoutrrr) Send(ctx context.Context, text string) error {
	if err := errors.Join(s.router.Send(text, nil)...); err != nil {
		return errors.New(redact.String(err.Error()))
	}
	return nil
}
