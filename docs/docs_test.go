package docs_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/authd/authd/internal/config"
)

// block is one fenced code block of a Markdown file.
type block struct {
	file, lang, text string
	line             int
	tested           bool // preceded by <!-- tested -->
}

func blocks(t *testing.T, file string) []block {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{file: file, lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: n,
				tested: strings.TrimSpace(prev) == "<!-- tested -->"}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
		prev = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated code block", file, cur.line)
	}
	return out
}

func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs found: %v", err)
	}
	return files
}

// TestDocs_ShellBlocksRun runs every sh block of each page, in order, as
// one bash script per page against the real authd binary, with `authd` on
// PATH and the same environment an operator's shell would have. An sh
// block without <!-- tested --> right above it fails the test: every
// command in the docs runs here.
func TestDocs_ShellBlocksRun(t *testing.T) {
	a := startAuthd(t)
	path := filepath.Dir(a.Bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	if pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(pg) > 0 {
		path += string(os.PathListSeparator) + pg[len(pg)-1] // pg_dump in the backup section
	}
	for _, file := range markdownFiles(t) {
		var script strings.Builder
		script.WriteString("set -euo pipefail\n")
		for _, b := range blocks(t, file) {
			if b.lang != "sh" {
				continue
			}
			if !b.tested {
				t.Errorf("%s:%d: sh block without <!-- tested --> above it", file, b.line)
				continue
			}
			fmt.Fprintf(&script, "# %s:%d\n%s", file, b.line, b.text)
		}
		if script.Len() == len("set -euo pipefail\n") {
			continue
		}
		t.Run(strings.TrimSuffix(file, ".md"), func(t *testing.T) {
			cmd := exec.Command("bash", "-c", script.String())
			cmd.Dir = t.TempDir()
			cmd.Env = append(append([]string{}, a.Env...), "PATH="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n--- script ---\n%s\n--- output ---\n%s", file, err, script.String(), out)
			}
		})
	}
}

// TestDocs_GoBlocksParse keeps Go examples syntactically valid: each go
// block is a whole file.
func TestDocs_GoBlocksParse(t *testing.T) {
	for _, file := range markdownFiles(t) {
		for _, b := range blocks(t, file) {
			if b.lang != "go" {
				continue
			}
			if _, err := parser.ParseFile(token.NewFileSet(), b.file, b.text, parser.AllErrors); err != nil {
				t.Errorf("%s:%d: %v", file, b.line, err)
			}
		}
	}
}

// configReference renders config.Vars() as the Markdown table of
// configuration.md.
func configReference() string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Meaning |\n|---|---|---|\n")
	for _, v := range config.Vars() {
		def := v.Default
		if def == "" {
			def = "—"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Doc, "|", `\|`))
	}
	return b.String()
}

const (
	refStart = "<!-- BEGIN GENERATED: go test ./docs with AUTHD_UPDATE_DOCS=1 -->\n"
	refEnd   = "<!-- END GENERATED -->\n"
)

// TestDocs_ConfigurationReferenceUpToDate checks the table in
// configuration.md against internal/config; AUTHD_UPDATE_DOCS=1 rewrites it.
func TestDocs_ConfigurationReferenceUpToDate(t *testing.T) {
	raw, err := os.ReadFile("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, refStart), strings.Index(doc, refEnd)
	if i < 0 || j < i {
		t.Fatal("configuration.md has no generated section")
	}
	want := doc[:i+len(refStart)] + configReference() + doc[j:]
	if doc == want {
		return
	}
	if os.Getenv("AUTHD_UPDATE_DOCS") == "1" {
		if err := os.WriteFile("configuration.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("configuration.md is out of date with internal/config: run AUTHD_UPDATE_DOCS=1 go test ./docs -run Configuration")
}

var metricRE = regexp.MustCompile(`authd_[a-z0-9_]+`)

// TestDocs_DashboardMetricsExist checks the Grafana dashboard is valid JSON
// and only queries metrics some package of authd defines.
func TestDocs_DashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	defined := map[string]bool{}
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".authd" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`"(authd_[a-z0-9_]+)"`).FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if s := strings.TrimSuffix(m, suf); s != m && defined[s] {
						base = s
					}
				}
				if !defined[base] {
					t.Errorf("panel %q queries %s, which no package defines", p.Title, m)
				}
			}
		}
	}
}

// TestDocs_StandAlone: every relative link in the repository's Markdown
// points at a file inside the repository that exists, so a clone reads
// whole (no links into a workspace around it).
func TestDocs_StandAlone(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)#\s]+)`)
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			abs := filepath.Join(filepath.Dir(path), target)
			rel, _ := filepath.Rel(root, abs)
			if strings.HasPrefix(rel, "..") {
				t.Errorf("%s links outside the repository: %s", path, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links to a missing file: %s", path, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no relative links found: is the walk reading the Markdown files?")
	}
}
