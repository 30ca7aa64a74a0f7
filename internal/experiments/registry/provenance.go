package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"imet/internal/base/buildinfo"
)

// Code identifies the code a run was made with.
type Code struct {
	Revision string // git commit, or "<module version> <go version>" without VCS data
	Dirty    bool
}

var (
	codeOnce sync.Once
	code     Code
)

// CodeVersion returns the revision of the running code: the VCS data the Go
// toolchain embedded at build time, else (go run, go test) the git checkout
// of the working directory, else the module version.
func CodeVersion() Code {
	codeOnce.Do(func() {
		bi := buildinfo.Read()
		if bi.Revision != "" {
			code = Code{Revision: bi.Revision, Dirty: bi.Dirty}
			return
		}
		if c, ok := gitVersion(); ok {
			code = c
			return
		}
		code = Code{Revision: bi.Version + " " + bi.Go}
	})
	return code
}

func gitVersion() (Code, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return Code{}, false
	}
	c := Code{Revision: strings.TrimSpace(string(out))}
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	c.Dirty = err != nil || len(strings.TrimSpace(string(st))) > 0
	return c, true
}

// Fingerprint identifies a data set: the contents of its CSV files plus the
// list of image files (relative name and size) under imageDir, so that a
// changed label, an added fold file or a missing image all change it, while
// the images' pixels are not re-read on every run. imageDir may be empty.
func Fingerprint(csvPaths []string, imageDir string) (string, error) {
	h := sha256.New()
	paths := append([]string(nil), csvPaths...)
	sort.Strings(paths)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
		fmt.Fprintf(h, "csv %s\n", filepath.Base(p))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("fingerprint: %s: %w", p, err)
		}
		h.Write([]byte{0})
	}
	if imageDir != "" {
		var names []string
		sizes := map[string]int64{}
		err := filepath.WalkDir(imageDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(imageDir, p)
			rel = filepath.ToSlash(rel)
			names = append(names, rel)
			sizes[rel] = info.Size()
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(h, "img %s %d\n", n, sizes[n])
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// secretKey matches YAML keys whose values must never be stored; keys that
// only name where a secret lives (…_env, …_file) are kept.
var (
	secretKey = regexp.MustCompile(`(?im)^(\s*(?:-\s+)?"?[\w.-]*(?:token|secret|password|passwd|api_?key|credential)[\w.-]*"?\s*:[ \t]*)([^\s#].*?)$`)
	envOrFile = regexp.MustCompile(`(?i)_(env|file|path)"?\s*:\s*$`)
	urlCreds  = regexp.MustCompile(`(://)[^/\s:@]+:[^/\s@]+@`)
)

// Redacted replaces secret values in stored configurations.
const Redacted = "<redacted>"

// RedactSecrets blanks the values of secret-looking keys and the passwords
// in URLs of a YAML document. Secrets belong in the environment or a file;
// this is the second line of defence for one that slipped into a config.
func RedactSecrets(yamlText string) string {
	out := secretKey.ReplaceAllStringFunc(yamlText, func(line string) string {
		m := secretKey.FindStringSubmatch(line)
		if envOrFile.MatchString(m[1]) {
			return line
		}
		return m[1] + Redacted
	})
	return urlCreds.ReplaceAllString(out, "${1}"+Redacted+"@")
}
