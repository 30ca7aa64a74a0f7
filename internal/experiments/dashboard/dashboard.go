// Package dashboard serves a small web page over the run registry: the list
// of runs, each run's curves, and side-by-side comparisons, refreshing
// itself while a run trains. Everything it needs is embedded in the binary
// (no CDN), and figures are SVG drawn on the server.
//
// It binds to loopback by default. Bound anywhere else it refuses to start
// without a token, and then every request must carry it (header, query or
// the cookie set by a first request with the query). Without a token it
// answers only requests addressed to a loopback name (the Host header), so
// that a web page whose domain is made to resolve to 127.0.0.1 (DNS
// rebinding) cannot read it.
package dashboard

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"imet/internal/experiments/plots"
	"imet/internal/experiments/registry"
)

//go:embed assets
var assets embed.FS

// Options configure a dashboard.
type Options struct {
	// Token, when set, must accompany every request. Required when the
	// dashboard listens beyond loopback.
	Token string
	// Refresh is how often a page showing a running run reloads itself.
	Refresh time.Duration
	// RecordedBy names the commands whose runs reach the registry, for the
	// empty list's hint; nil leaves the hint out.
	RecordedBy []string
}

// MinTokenLen is the shortest token accepted: a short one is guessed by
// anyone who can reach the port.
const MinTokenLen = 16

// TokenCookie is the cookie that carries the token after a first request
// with ?token=, so that links inside the dashboard keep working.
const TokenCookie = "imet_token"

// Server is the dashboard's HTTP handler.
type Server struct {
	db   *registry.DB
	opts Options
	tmpl *template.Template
	mux  *http.ServeMux
	cv   cvCache
}

// New returns the dashboard over db.
func New(db *registry.DB, opts Options) *Server {
	if opts.Refresh <= 0 {
		opts.Refresh = 10 * time.Second
	}
	funcs := template.FuncMap{
		"f4": func(v *float64) string {
			if v == nil {
				return "–"
			}
			return fmt.Sprintf("%.4f", *v)
		},
		"time":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04") },
		"short": func(s string) string { return shorten(s, 10) },
		"join":  strings.Join,
	}
	s := &Server{
		db:   db,
		opts: opts,
		tmpl: template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")),
		mux:  http.NewServeMux(),
	}
	// One file per request and no listing: a directory index would show
	// the page templates.
	s.mux.HandleFunc("GET /static/{name}", s.static)
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /runs/{id}", s.run)
	s.mux.HandleFunc("GET /runs/{id}/figures/{file}", s.figure)
	s.mux.HandleFunc("GET /compare", s.compare)
	return s
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ServeHTTP checks the token (without one, that the request is addressed
// to loopback), then serves the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.opts.Token == "":
		if !loopbackHost(r.Host) {
			http.Error(w, fmt.Sprintf("421 misdirected request: without a token this dashboard answers only to localhost, 127.0.0.1 or [::1], not to Host %q", r.Host), http.StatusMisdirectedRequest)
			return
		}
	case CheckToken(s.opts.Token) != nil:
		http.Error(w, "500: "+CheckToken(s.opts.Token).Error(), http.StatusInternalServerError)
		return
	default:
		ok, fromQuery := s.authorized(r)
		if !ok {
			http.Error(w, "401 unauthorized: this dashboard needs its token (Authorization: Bearer …, or ?token=…)", http.StatusUnauthorized)
			return
		}
		if fromQuery {
			// The token moves into an HttpOnly cookie and out of the
			// address bar, the history and the Referer of later requests.
			http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: s.opts.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			u := *r.URL
			q := u.Query()
			q.Del("token")
			u.RawQuery = q.Encode()
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
	}
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) (ok, fromQuery bool) {
	eq := func(got string) bool {
		return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) == 1
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") && eq(strings.TrimPrefix(h, "Bearer ")) {
		return true, false
	}
	if eq(r.Header.Get("X-Imet-Token")) {
		return true, false
	}
	if c, err := r.Cookie(TokenCookie); err == nil && eq(c.Value) {
		return true, false
	}
	if eq(r.URL.Query().Get("token")) {
		return true, true
	}
	return false, false
}

// CheckToken refuses a token shorter than MinTokenLen; "" (no token) is
// accepted.
func CheckToken(token string) error {
	if token != "" && len(token) < MinTokenLen {
		return fmt.Errorf("dashboard: the token has %d characters, at least %d are needed (e.g. openssl rand -hex 16)", len(token), MinTokenLen)
	}
	return nil
}

// CheckBind refuses to listen beyond loopback without a token, and a token
// that CheckToken refuses.
func CheckBind(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dashboard: address %q: %w", addr, err)
	}
	if err := CheckToken(token); err != nil {
		return err
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("dashboard: %s is reachable from other machines; set a token (IMET_DASHBOARD_TOKEN) or bind 127.0.0.1", addr)
}

func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHost reports whether a Host header names loopback: localhost,
// 127.0.0.0/8 or [::1], with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return host != "" && isLoopback(host)
}

// static serves one embedded file that is not a page template.
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name != path.Base(name) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".html") {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(assets, "assets/"+name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// Serve answers on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type page struct {
	Title      string
	RecordedBy []string // the index's hint when no run is recorded
	Refresh    int      // seconds; 0 for none
	Runs       []*registry.Record
	Run        *registry.Record
	Figure     template.HTML
	Scatter    template.HTML
	Diffs      []registry.ConfigDiff
	Metrics    []metricRow
	Arts       []registry.Artifact
	Groups     []groupRow
	CVFigures  []figureLink // a cv run's figures
	CVError    string       // why a cv run has none
}

type metricRow struct {
	Name       string
	N          int
	Last, Best float64
}

type groupRow struct {
	Group string
	F2    float64
}

func (s *Server) render(w http.ResponseWriter, name string, p *page) {
	var b bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&b, name, p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

func (s *Server) refreshIf(running bool) int {
	if running {
		return int(s.opts.Refresh.Round(time.Second) / time.Second)
	}
	return 0
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	runs, err := s.db.List(registry.Filter{Kind: registry.Kind(r.URL.Query().Get("kind")), Tag: r.URL.Query().Get("tag")})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p := &page{Title: "runs", Runs: runs, RecordedBy: s.opts.RecordedBy}
	var scores []plots.RunScore
	running := false
	for _, rec := range runs {
		running = running || rec.Status == registry.StatusRunning
		if rec.CVF2 != nil && rec.LB != nil {
			scores = append(scores, plots.RunScore{Name: fmt.Sprintf("%d %s", rec.ID, rec.Name), CV: *rec.CVF2, LB: *rec.LB})
		}
	}
	p.Refresh = s.refreshIf(running)
	if len(scores) > 0 {
		if f, err := plots.CVvsLB("CV vs leaderboard", scores); err == nil {
			p.Scatter = inline(f)
		}
	}
	s.render(w, "index.html", p)
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	rec, err := s.db.Get(id)
	if errors.Is(err, registry.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ms, err := s.db.Metrics(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	arts, _ := s.db.Artifacts(id)
	p := &page{Title: fmt.Sprintf("run %d %s", rec.ID, rec.Name), Run: rec, Arts: arts,
		Refresh: s.refreshIf(rec.Status == registry.StatusRunning)}
	var series []plots.Series
	for _, name := range registry.MetricNames(ms) {
		m := ms[name]
		row := metricRow{Name: name, N: len(m), Last: m[len(m)-1].Value, Best: m[0].Value}
		higher := strings.Contains(strings.ToLower(name), "f2")
		for _, v := range m {
			if (higher && v.Value > row.Best) || (!higher && v.Value < row.Best) {
				row.Best = v.Value
			}
		}
		p.Metrics = append(p.Metrics, row)
		series = append(series, toSeries(name, m))
	}
	if f, err := plots.LearningCurves(p.Title, series); err == nil {
		p.Figure = inline(f)
	}
	for g, v := range rec.GroupF2 {
		p.Groups = append(p.Groups, groupRow{g, v})
	}
	sortGroups(p.Groups)
	s.cvSection(p, rec, arts)
	s.render(w, "run.html", p)
}

func (s *Server) compare(w http.ResponseWriter, r *http.Request) {
	var recs []*registry.Record
	var configs []string
	var series []plots.Series
	running := false
	for _, v := range r.URL.Query()["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("bad run id %q", v), http.StatusBadRequest)
			return
		}
		rec, err := s.db.Get(id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		running = running || rec.Status == registry.StatusRunning
		recs = append(recs, rec)
		configs = append(configs, rec.Config)
		ms, _ := s.db.Metrics(id)
		for _, name := range registry.MetricNames(ms) {
			series = append(series, toSeries(fmt.Sprintf("%d %s", id, name), ms[name]))
		}
	}
	if len(recs) < 2 {
		http.Error(w, "compare needs at least two runs: /compare?id=1&id=2", http.StatusBadRequest)
		return
	}
	diffs, err := registry.DiffConfigs(configs...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p := &page{Title: "compare", Runs: recs, Diffs: diffs, Refresh: s.refreshIf(running)}
	if f, err := plots.LearningCurves("", series); err == nil {
		p.Figure = inline(f)
	}
	s.render(w, "compare.html", p)
}

func toSeries(name string, m []registry.Metric) plots.Series {
	s := plots.Series{Name: name}
	for _, v := range m {
		s.X = append(s.X, float64(v.Step))
		s.Y = append(s.Y, v.Value)
	}
	return s
}

func sortGroups(g []groupRow) {
	for i := 1; i < len(g); i++ {
		for j := i; j > 0 && g[j].Group < g[j-1].Group; j-- {
			g[j], g[j-1] = g[j-1], g[j]
		}
	}
}

// inline renders a figure as SVG markup fit for embedding in HTML. The SVG
// is produced here from numbers, with text escaped by the renderer.
func inline(f *plots.Figure) template.HTML {
	b, err := f.SVG()
	if err != nil {
		return ""
	}
	if i := bytes.Index(b, []byte("<svg")); i > 0 {
		b = b[i:]
	}
	return template.HTML(b)
}
