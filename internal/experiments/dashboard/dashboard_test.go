package dashboard

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"imet/internal/experiments/plots"
	"imet/internal/experiments/registry"
)

// seed fills a registry with a finished, a failed and a running run.
func seed(t *testing.T) (*registry.DB, *registry.Run) {
	t.Helper()
	db, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfgs := []string{
		"model:\n  arch: resnet50\noptim:\n  lr: 0.001\n  batch: 64\n",
		"model:\n  arch: seresnext50\noptim:\n  lr: 0.0005\n  batch: 64\n",
	}
	for i, name := range []string{"resnet50-f0", "seresnext50-f0"} {
		r, err := db.Start(registry.RunInfo{Name: name, Kind: registry.KindTrain, Config: cfgs[i], Args: []string{"imet", "train"}})
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s <= 60; s++ {
			x := float64(s)
			r.Metric(s, x/20, "train_loss", 0.02+math.Exp(-x/(15+5*float64(i))))
			r.Metric(s, x/20, "lr", 1e-3*0.5*(1+math.Cos(math.Pi*x/60)))
			if s%10 == 0 {
				r.Metric(s, x/20, "val_f2", (0.58+0.03*float64(i))*(1-math.Exp(-x/20)))
			}
		}
		r.Finish(registry.Summary{CVF2: 0.58 + 0.03*float64(i), GroupF2: map[string]float64{"culture": 0.45, "tag": 0.62}})
		db.SetLB(r.ID(), 0.6+0.01*float64(i))
	}
	f, _ := db.Start(registry.RunInfo{Name: "effnet-b3", Kind: registry.KindCV})
	f.Fail(errors.New("CUDA out of memory"), []string{"epoch 1", "RuntimeError: CUDA out of memory"})
	live, _ := db.Start(registry.RunInfo{Name: "resnet101-live", Kind: registry.KindTrain})
	for s := 0; s < 20; s++ {
		live.Metric(s, float64(s)/20, "train_loss", 1/float64(s+1))
	}
	t.Cleanup(func() { live.Finish(registry.Summary{}) })
	db.Tag(2, "best")
	return db, live
}

// serve starts the dashboard on a real listener and returns its base URL.
func serve(t *testing.T, addr string, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

// noRedirect answers with a redirect instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get requests url with the headers hdr ("Host" sets the Host header),
// without following redirects.
func get(t *testing.T, url string, hdr map[string]string) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if h, ok := hdr["Host"]; ok {
		req.Host = h
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func TestPages(t *testing.T) {
	db, live := seed(t)
	base := serve(t, "127.0.0.1:0", New(db, Options{Refresh: 3 * time.Second}))
	for _, tc := range []struct {
		path   string
		code   int
		want   []string
		banned []string
	}{
		{"/", 200, []string{"resnet50-f0", "seresnext50-f0", "effnet-b3", `class="status failed"`, `class="status running"`,
			`http-equiv="refresh" content="3"`, "0.6100", "<svg", "CV against leaderboard", `<span class="tag">best</span>`}, nil},
		{"/runs/1", 200, []string{"resnet50-f0", "<svg", "train_loss", "val_f2", "culture", "0.5800", "Resolved configuration"}, []string{`http-equiv="refresh"`}},
		{"/runs/3", 200, []string{"CUDA out of memory", "RuntimeError", `class="status failed"`}, nil},
		{"/runs/" + strconv.FormatInt(live.ID(), 10), 200, []string{`http-equiv="refresh"`, `class="status running"`, "<svg"}, nil},
		{"/compare?id=1&id=2", 200, []string{"model.arch", "seresnext50", "optim.lr", "0.0005", "0.6100", "<svg"}, []string{"optim.batch"}},
		{"/compare?id=1", 400, nil, nil},
		{"/runs/999", 404, nil, nil},
		{"/static/style.css", 200, []string{".status.failed"}, nil},
	} {
		code, body, _ := get(t, base+tc.path, nil)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d\n%s", tc.path, code, tc.code, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", tc.path, w)
			}
		}
		for _, b := range tc.banned {
			if strings.Contains(body, b) {
				t.Errorf("%s contains %q", tc.path, b)
			}
		}
	}
}

func TestTokenOnEveryRequest(t *testing.T) {
	db, _ := seed(t)
	const tok = "s3cret-token-0123456789"
	base := serve(t, "127.0.0.1:0", New(db, Options{Token: tok}))
	for _, tc := range []struct {
		name string
		url  string
		hdr  map[string]string
		code int
	}{
		{"no token", base + "/", nil, 401},
		{"no token, static", base + "/static/style.css", nil, 401},
		{"no token, run", base + "/runs/1", nil, 401},
		{"wrong bearer", base + "/", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"wrong query", base + "/?token=s3cret-token", nil, 401},
		{"bearer", base + "/", map[string]string{"Authorization": "Bearer " + tok}, 200},
		{"header", base + "/runs/1", map[string]string{"X-Imet-Token": tok}, 200},
		{"cookie", base + "/runs/1", map[string]string{"Cookie": TokenCookie + "=" + tok}, 200},
	} {
		if code, body, _ := get(t, tc.url, tc.hdr); code != tc.code {
			t.Errorf("%s: %d, want %d: %s", tc.name, code, tc.code, body)
		} else if code == 401 && strings.Contains(body, "resnet50") {
			t.Errorf("%s: refused page leaks data", tc.name)
		}
	}
	// ?token= is exchanged for an HttpOnly cookie and a redirect to the
	// same page without it, so that it leaves the address bar and history.
	code, _, resp := get(t, base+"/compare?id=1&token="+tok+"&id=2", nil)
	if code != http.StatusSeeOther {
		t.Fatalf("query token: %d, want 303", code)
	}
	if loc := resp.Header.Get("Location"); loc != "/compare?id=1&id=2" {
		t.Errorf("redirected to %q, want /compare?id=1&id=2", loc)
	}
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == TokenCookie {
			c = ck
		}
	}
	if c == nil || !c.HttpOnly || c.Value != tok {
		t.Fatalf("query token did not set an HttpOnly cookie: %+v", c)
	}
	if code, body, _ := get(t, base+resp.Header.Get("Location"), map[string]string{"Cookie": c.String()}); code != 200 || !strings.Contains(body, "model.arch") {
		t.Errorf("the page redirected to, with the cookie: %d", code)
	}
}

// Without a token the dashboard answers only requests addressed to a
// loopback name: a page on evil.example whose name a rebinding DNS server
// points at 127.0.0.1 reaches the port, but with its own Host header.
func TestNoTokenAnswersOnlyLoopbackHosts(t *testing.T) {
	db, _ := seed(t)
	base := serve(t, "127.0.0.1:0", New(db, Options{}))
	for _, tc := range []struct {
		host string
		code int
	}{
		{"evil.example:8080", http.StatusMisdirectedRequest},
		{"evil.example", http.StatusMisdirectedRequest},
		{"localhost.evil.example", http.StatusMisdirectedRequest},
		{"192.168.1.5:8080", http.StatusMisdirectedRequest},
		{"0.0.0.0:8080", http.StatusMisdirectedRequest},
		{"localhost:8080", 200},
		{"LOCALHOST", 200},
		{"127.0.0.1:8080", 200},
		{"127.3.4.5", 200},
		{"[::1]:8080", 200},
		{"[::1]", 200},
	} {
		code, body, _ := get(t, base+"/runs/1", map[string]string{"Host": tc.host})
		if code != tc.code {
			t.Errorf("Host %s: %d, want %d", tc.host, code, tc.code)
		}
		if code != 200 && (strings.Contains(body, "resnet50") || strings.Contains(body, "imet train")) {
			t.Errorf("Host %s: refused page leaks the run: %s", tc.host, body)
		}
	}
	// With a token, the token is the guard, whatever the name.
	tok := strings.Repeat("k", MinTokenLen)
	base = serve(t, "127.0.0.1:0", New(db, Options{Token: tok}))
	if code, _, _ := get(t, base+"/", map[string]string{"Host": "dashboard.example", "X-Imet-Token": tok}); code != 200 {
		t.Errorf("token and another Host: %d", code)
	}
}

// A token shorter than MinTokenLen is refused before listening, and a
// Server given one answers nothing.
func TestShortTokenRefused(t *testing.T) {
	short := strings.Repeat("k", MinTokenLen-1)
	for _, tok := range []string{"x", short} {
		for _, addr := range []string{"0.0.0.0:8080", "127.0.0.1:8080"} {
			if err := CheckBind(addr, tok); err == nil || !strings.Contains(err.Error(), "16") {
				t.Errorf("CheckBind(%s, %d characters) = %v", addr, len(tok), err)
			}
		}
	}
	db, _ := seed(t)
	base := serve(t, "127.0.0.1:0", New(db, Options{Token: "x"}))
	if code, body, _ := get(t, base+"/", map[string]string{"X-Imet-Token": "x"}); code != 500 || strings.Contains(body, "resnet50") {
		t.Errorf("1-character token: %d %.200s", code, body)
	}
}

// /static/ serves the style sheet and nothing else: no listing of the
// embedded files, no page template.
func TestStaticListsNothing(t *testing.T) {
	db, _ := seed(t)
	base := serve(t, "127.0.0.1:0", New(db, Options{}))
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/static/style.css", 200},
		{"/static/", 404},
		{"/static", 404},
		{"/static/index.html", 404},
		{"/static/layout.html", 404},
		{"/static/nope.css", 404},
		{"/static/..%2fdashboard.go", 404},
	} {
		code, body, _ := get(t, base+tc.path, nil)
		if code != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, code, tc.code)
		}
		if tc.code != 200 && (strings.Contains(body, ".html") || strings.Contains(body, "{{")) {
			t.Errorf("%s shows templates: %.200s", tc.path, body)
		}
	}
}

// TestRemoteBindRefusesWithoutToken binds a non-loopback address of this
// machine, so the request arrives as it would from another host.
func TestRemoteBindRefusesWithoutToken(t *testing.T) {
	var ip string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP.String()
			break
		}
	}
	if ip == "" {
		t.Skip("no non-loopback IPv4 address on this machine")
	}
	addr := net.JoinHostPort(ip, "0")
	if err := CheckBind(addr, ""); err == nil {
		t.Fatalf("CheckBind(%s) without token accepted", addr)
	}
	db, _ := seed(t)
	const tok = "remote-token-0123456789"
	base := serve(t, addr, New(db, Options{Token: tok}))
	if code, _, _ := get(t, base+"/", nil); code != 401 {
		t.Errorf("remote request without token: %d, want 401", code)
	}
	if code, _, _ := get(t, base+"/", map[string]string{"Authorization": "Bearer " + tok}); code != 200 {
		t.Errorf("remote request with token: %d", code)
	}
}

func TestCheckBind(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"localhost:8080", "", true},
		{"[::1]:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"192.168.1.5:8080", "", false},
		{"0.0.0.0:8080", "t", false},
		{"0.0.0.0:8080", "0123456789abcdef", true},
		{"nonsense", "0123456789abcdef", false},
	} {
		if err := CheckBind(tc.addr, tc.token); (err == nil) != tc.ok {
			t.Errorf("CheckBind(%q, %q) = %v", tc.addr, tc.token, err)
		}
	}
}

// TestChromiumScreenshot renders the dashboard in headless Chromium. The
// screenshot goes to $IMET_ARTIFACTS/dashboard/ when set (CI keeps it),
// else to the test's temp dir.
func TestChromiumScreenshot(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium not installed (scripts/deps.sh installs it)")
	}
	db, _ := seed(t)
	const tok = "screenshot-token-0123"
	cv, _ := seedCV(t, db)
	cvPage := "/runs/" + strconv.FormatInt(cv, 10)
	base := serve(t, "127.0.0.1:0", New(db, Options{Token: tok}))
	dir := t.TempDir()
	if a := os.Getenv("IMET_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "dashboard")
		os.MkdirAll(dir, 0o755)
	}
	for _, pg := range []struct {
		name, path, want string
		height           int // of the window; 0: 900
		// bars is how many pixels of the folds figure's second bar colour
		// the page must show: only the figure, loaded as an image, has
		// that much of it.
		bars int
	}{
		{name: "index", path: "/", want: "seresnext50-f0"},
		{name: "run", path: "/runs/2", want: "train_loss"},
		{name: "compare", path: "/compare?id=1&id=2", want: "model.arch"},
		{name: "cv", path: cvPage, want: "Cross-validation", height: 2900, bars: 15000},
	} {
		height := pg.height
		if height == 0 {
			height = 900
		}
		shot := filepath.Join(dir, "dashboard-"+pg.name+".png")
		url := base + pg.path
		if strings.Contains(url, "?") {
			url += "&token=" + tok
		} else {
			url += "?token=" + tok
		}
		flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), fmt.Sprintf("--window-size=1280,%d", height)}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		dom, err := exec.CommandContext(ctx, bin, append(flags, "--dump-dom", url)...).Output()
		if err != nil {
			cancel()
			t.Fatalf("chromium --dump-dom: %v", err)
		}
		if !strings.Contains(string(dom), pg.want) || !strings.Contains(string(dom), "<svg") {
			t.Errorf("%s: rendered DOM lacks %q or the figure", pg.name, pg.want)
		}
		out, err := exec.CommandContext(ctx, bin, append(flags, "--screenshot="+shot, url)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("chromium --screenshot: %v\n%s", err, out)
		}
		f, err := os.Open(shot)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		if b.Dx() != 1280 || b.Dy() != height {
			t.Errorf("%s: screenshot %dx%d", pg.name, b.Dx(), b.Dy())
		}
		// Count distinct colours in a sample: an error page or a blank
		// render has a handful, a table with statuses and a figure many.
		colours := map[uint32]bool{}
		for y := 0; y < b.Dy(); y += 3 {
			for x := 0; x < b.Dx(); x += 3 {
				r, g, bl, _ := img.At(x, y).RGBA()
				colours[(r>>11)<<10|(g>>11)<<5|bl>>11] = true
			}
		}
		if len(colours) < 20 {
			t.Errorf("%s: only %d colours in the screenshot; page blank?", pg.name, len(colours))
		}
		if pg.bars > 0 {
			want := plots.Palette[1]
			wr, wg, wb, _ := want.RGBA()
			n := 0
			for y := 0; y < b.Dy(); y++ {
				for x := 0; x < b.Dx(); x++ {
					r, g, bl, _ := img.At(x, y).RGBA()
					if absDiff(r, wr)+absDiff(g, wg)+absDiff(bl, wb) < 0x1800 {
						n++
					}
				}
			}
			if n < pg.bars {
				t.Errorf("%s: %d pixels of the bars' colour, want %d: did the figures load?", pg.name, n, pg.bars)
			}
		}
		t.Logf("screenshot: %s", shot)
	}
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// The empty list names the commands it was told record runs, and no
// others: it once promised predict and thresholds runs that never came.
func TestEmptyListNamesRecordingCommands(t *testing.T) {
	db, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	base := serve(t, "127.0.0.1:0", New(db, Options{RecordedBy: []string{"cv", "train"}}))
	_, body, _ := get(t, base+"/", nil)
	if want := "Runs of <code>imet cv</code>, <code>imet train</code> appear here."; !strings.Contains(body, want) {
		t.Errorf("empty list lacks %q:\n%s", want, body)
	}
	for _, banned := range []string{"predict", "thresholds"} {
		if strings.Contains(body, banned) {
			t.Errorf("empty list names %s", banned)
		}
	}
	base = serve(t, "127.0.0.1:0", New(db, Options{}))
	if _, body, _ = get(t, base+"/", nil); !strings.Contains(body, "No runs recorded yet.</p>") {
		t.Errorf("without RecordedBy the hint should be left out:\n%s", body)
	}
}
