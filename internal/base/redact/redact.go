// Package redact masks secrets (notification tokens, webhook keys, URL
// passwords) in every text the toolkit writes where someone else may read
// it: log lines, errors, notification failures and registry rows.
//
// There is one redactor per process, because a secret is the process's:
// package notify registers every token and URL it is given (Add, AddURL),
// and the writers of logs and registry rows pass their text through String,
// Config or a Writer. Registered secrets are masked wherever they appear,
// also inside URLs that a notification service derives from its own (a
// Discord URL "discord://TOKEN@ID" is posted to
// "https://discord.com/api/webhooks/ID/TOKEN", which an HTTP error quotes).
// Secrets nobody registered are caught by their shape: the userinfo and
// every query value of any URL, every path segment (and the host, unless it
// is a network address) of a notification URL, token-like path segments of
// other URLs, Telegram bot tokens and bearer tokens.
package redact

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Mask replaces every secret.
const Mask = "<redacted>"

// MinSecret is the shortest registered secret that is masked wherever it
// appears: shorter parts of a URL ("hook", "yes", a port) are ordinary
// words, and masking them everywhere would garble the logs. They are still
// masked where they stand in a URL.
const MinSecret = 8

// NotifySchemes are the URL schemes of the notification services (every
// service Shoutrrr routes, which package notify uses; its test keeps this
// list complete). In their URLs the userinfo, the path and the query are
// the service's keys, and so is the host unless it is a network address.
var NotifySchemes = []string{
	"bark", "discord", "generic", "googlechat", "gotify", "hangouts", "ifttt",
	"join", "lark", "logger", "matrix", "mattermost", "notifiarr", "ntfy",
	"opsgenie", "pagerduty", "pushbullet", "pushover", "rocketchat", "signal",
	"slack", "smtp", "teams", "telegram", "wecom", "xmpp", "zulip",
}

// Redactor masks registered secrets and secret-shaped text.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // longest first, so that a secret containing another is masked whole
}

// New returns a Redactor that knows no secret yet.
func New() *Redactor { return &Redactor{} }

var std = New()

// Default returns the process's redactor, the one the package functions use.
func Default() *Redactor { return std }

// Add registers literal secrets; those shorter than MinSecret are ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		s = strings.TrimSpace(s)
		if len(s) < MinSecret || contains(r.secrets, s) {
			continue
		}
		r.secrets = append(r.secrets, s)
		// Query values and userinfo reach errors escaped as often as not.
		if e := url.QueryEscape(s); e != s && !contains(r.secrets, e) {
			r.secrets = append(r.secrets, e)
		}
	}
	sort.SliceStable(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// AddURL registers a notification URL and each of its secret parts (the
// userinfo's user and password, every path segment and query value, and a
// host that is not a network address), so that they are masked in the
// forms the service turns them into.
func (r *Redactor) AddURL(raw string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return
	}
	parts := []string{raw}
	scheme, rest, ok := strings.Cut(raw, "://")
	if ok {
		u := split(scheme, rest)
		if u.userinfo != "" {
			user, pass, _ := strings.Cut(u.userinfo, ":")
			parts = append(parts, u.userinfo, unescape(user), unescape(pass))
		}
		if u.notify && !isNetworkHost(u.host) {
			parts = append(parts, u.host)
		}
		for _, seg := range strings.Split(u.path, "/") {
			parts = append(parts, unescape(seg))
		}
		for _, kv := range strings.Split(u.query, "&") {
			_, v, _ := strings.Cut(kv, "=")
			parts = append(parts, unescape(v))
		}
	}
	r.Add(parts...)
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

var (
	urlRE    = regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s"'<>\x60\\]+)`)
	botToken = regexp.MustCompile(`\b\d{6,}:[A-Za-z0-9_-]{30,}`)
	bearer   = regexp.MustCompile(`(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}`)
)

// String returns s with every registered secret and every secret-shaped
// part masked.
func (r *Redactor) String(s string) string {
	r.mu.RLock()
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	r.mu.RUnlock()
	if strings.Contains(s, "://") {
		s = urlRE.ReplaceAllStringFunc(s, func(m string) string {
			scheme, rest, _ := strings.Cut(m, "://")
			return split(scheme, rest).masked()
		})
	}
	s = botToken.ReplaceAllString(s, Mask)
	return bearer.ReplaceAllString(s, "${1}"+Mask)
}

// Strings returns a copy of list with each element passed through String.
func (r *Redactor) Strings(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = r.String(s)
	}
	return out
}

// Error returns err with its message passed through String, nil for nil.
// The chain is not kept: an error that wraps another keeps its secrets in
// the wrapped one's message, where errors.As would hand them out again.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		return errors.New(red)
	}
	return err
}

// secretKey matches YAML keys whose values must never be stored; keys that
// only name where a secret lives (…_env, …_file, …_path) are kept.
var (
	secretKey = regexp.MustCompile(`(?im)^(\s*(?:-\s+)?"?[\w.-]*(?:token|secret|password|passwd|api_?key|credential)[\w.-]*"?\s*:[ \t]*)([^\s#].*?)$`)
	envOrFile = regexp.MustCompile(`(?i)_(env|file|path)"?\s*:\s*$`)
)

// Config returns a YAML document with the values of secret-looking keys
// (*token*, *secret*, *password*, *api_key*, *credential*) masked, then
// passed through String. Secrets belong in the environment or a file; this
// is the second line of defence for one that slipped into a configuration.
func (r *Redactor) Config(yamlText string) string {
	out := secretKey.ReplaceAllStringFunc(yamlText, func(line string) string {
		m := secretKey.FindStringSubmatch(line)
		if envOrFile.MatchString(m[1]) {
			return line
		}
		return m[1] + Mask
	})
	return r.String(out)
}

// Add registers literal secrets with the process's redactor.
func Add(secrets ...string) { std.Add(secrets...) }

// AddURL registers a notification URL with the process's redactor.
func AddURL(raw string) { std.AddURL(raw) }

// String masks secrets with the process's redactor.
func String(s string) string { return std.String(s) }

// Strings masks secrets in each element with the process's redactor.
func Strings(list []string) []string { return std.Strings(list) }

// Error masks secrets in an error's message with the process's redactor.
func Error(err error) error { return std.Error(err) }

// Config masks secrets in a YAML document with the process's redactor.
func Config(yamlText string) string { return std.Config(yamlText) }

// parsed is a URL cut by hand: url.Parse refuses half of what appears in
// error messages, and what it refuses must still be masked.
type parsed struct {
	scheme, userinfo, host, path, query, fragment string
	hasQuery, hasFragment, notify                 bool
}

func split(scheme, rest string) parsed {
	u := parsed{scheme: scheme, notify: IsNotifyScheme(scheme)}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest, u.fragment, u.hasFragment = rest[:i], rest[i+1:], true
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, u.query, u.hasQuery = rest[:i], rest[i+1:], true
	}
	authority := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, u.path = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		u.userinfo, authority = authority[:i], authority[i+1:]
	}
	u.host = authority
	return u
}

func (u parsed) masked() string {
	var b strings.Builder
	b.WriteString(u.scheme + "://")
	if u.userinfo != "" {
		b.WriteString(Mask + "@")
	}
	if u.notify && u.host != "" && !isNetworkHost(u.host) {
		b.WriteString(Mask)
	} else {
		b.WriteString(u.host)
	}
	segs := strings.Split(u.path, "/")
	for i, seg := range segs {
		if seg != "" && (u.notify || tokenLike(seg)) {
			segs[i] = Mask
		}
	}
	b.WriteString(strings.Join(segs, "/"))
	if u.hasQuery {
		kvs := strings.Split(u.query, "&")
		for i, kv := range kvs {
			if k, v, ok := strings.Cut(kv, "="); ok && v != "" {
				kvs[i] = k + "=" + Mask
			}
		}
		b.WriteString("?" + strings.Join(kvs, "&"))
	}
	if u.hasFragment {
		b.WriteString("#" + Mask)
	}
	return b.String()
}

// IsNotifyScheme reports whether scheme is a notification service's
// (NotifySchemes), also in Shoutrrr's "generic+https" form.
func IsNotifyScheme(scheme string) bool {
	scheme = strings.ToLower(scheme)
	if base, _, ok := strings.Cut(scheme, "+"); ok {
		scheme = base
	}
	for _, s := range NotifySchemes {
		if s == scheme {
			return true
		}
	}
	return false
}

// isNetworkHost tells a server's address (a name with a dot, localhost, an
// IP address, a port) from a key standing where Shoutrrr puts a host
// ("ifttt://KEY", "pushover://…@USERKEY", "wecom://KEY").
func isNetworkHost(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "localhost:") || strings.ContainsAny(host, ".:[")
}

// tokenLike reports whether a path segment of an ordinary URL looks like a
// key (Discord's and Slack's webhook URLs carry theirs in the path, and a
// Telegram bot's API URL starts with "bot" and its token): at least 20
// letters, digits, '-' or '_' with both letters and digits and no dot, so
// that file names ("resnet50-19c8e357.pth") and words stay readable.
func tokenLike(seg string) bool {
	if strings.HasPrefix(seg, "bot") && botToken.MatchString(seg[3:]) {
		return true
	}
	if len(seg) < 20 {
		return false
	}
	letter, digit := false, false
	for _, c := range seg {
		switch {
		case c < unicode.MaxASCII && unicode.IsLetter(c):
			letter = true
		case c < unicode.MaxASCII && unicode.IsDigit(c):
			digit = true
		case c == '-' || c == '_' || c == ':':
		default:
			return false
		}
	}
	return letter && digit
}

// maxHold bounds how much of an unfinished line a Writer keeps back.
const maxHold = 64 << 10

// Writer masks secrets in what it writes on. It writes whole lines (up to
// the last '\n' or '\r'), so that a secret split over two writes is still
// seen whole, and keeps the unfinished rest until the line ends, maxHold
// bytes accumulate, or Flush.
type Writer struct {
	mu  sync.Mutex
	r   *Redactor
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer onto w using the process's redactor.
func NewWriter(w io.Writer) *Writer { return &Writer{r: std, w: w} }

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	i := bytes.LastIndexAny(w.buf, "\n\r")
	if i < 0 {
		if len(w.buf) < maxHold {
			return len(p), nil
		}
		i = len(w.buf) - 1
	}
	out := w.r.String(string(w.buf[:i+1]))
	w.buf = append(w.buf[:0], w.buf[i+1:]...)
	if _, err := io.WriteString(w.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the unfinished line, masked.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	out := w.r.String(string(w.buf))
	w.buf = w.buf[:0]
	_, err := io.WriteString(w.w, out)
	return err
}

// Stat reports the status of the file underneath, so that code deciding
// whether it writes to a terminal (a live progress bar) sees through the
// Writer; it fails when what is underneath is not a file.
func (w *Writer) Stat() (os.FileInfo, error) {
	if f, ok := w.w.(interface{ Stat() (os.FileInfo, error) }); ok {
		return f.Stat()
	}
	return nil, errors.New("redact: not a file")
}
