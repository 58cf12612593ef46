package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tutorialStep is one annotated code block of docs/governance.md. An HTML comment before a
// block says what to do with it: `<!-- tutorial: run -->` runs a sh block, `<!-- tutorial:
// file PATH -->` writes the block to PATH, `<!-- tutorial: edit PATH replace "GO-QUOTED"
// -->` replaces the quoted text (which must occur once) in PATH by the block. Blocks without
// a comment (the live gateway, forms the tutorial only mentions) are not run.
type tutorialStep struct {
	line               int
	kind, path, anchor string
	body               string
}

var tutorialDirective = regexp.MustCompile(`^<!-- tutorial: (run|file|edit)(?: (\S+))?(?: replace (".*"))? -->$`)

func tutorialSteps(t *testing.T, doc string) []tutorialStep {
	t.Helper()
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []tutorialStep
	var cur *tutorialStep
	inBlock := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && !inBlock:
			if !strings.HasPrefix(line, "```") {
				t.Fatalf("%s:%d: a tutorial directive must be followed by a code block", doc, cur.line)
			}
			inBlock = true
		case cur != nil && inBlock:
			if line == "```" {
				steps = append(steps, *cur)
				cur, inBlock = nil, false
				continue
			}
			cur.body += line + "\n"
		case strings.HasPrefix(line, "<!-- tutorial:"):
			m := tutorialDirective.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s:%d: bad tutorial directive %q", doc, n, line)
			}
			cur = &tutorialStep{line: n, kind: m[1], path: m[2]}
			if m[3] != "" {
				if cur.anchor, err = strconv.Unquote(m[3]); err != nil {
					t.Fatalf("%s:%d: %v", doc, n, err)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated tutorial block", doc, cur.line)
	}
	return steps
}

// treeHash hashes every file under dirs, to show that the tutorial leaves them alone.
func treeHash(t *testing.T, dirs ...string) string {
	t.Helper()
	h := sha256.New()
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			raw, err := os.ReadFile(p)
			h.Write([]byte(p))
			h.Write(raw)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		_, err := exec.LookPath(tool)
		switch {
		case err == nil:
		case os.Getenv("CI") == "true":
			t.Fatalf("%s is required under CI: %v", tool, err)
		default:
			t.Skipf("%s not installed (CI=true makes this a failure)", tool)
		}
	}
}

// TestGovernanceTutorial follows docs/governance.md as a reader would: the commands of its
// annotated code blocks run in order, in a policy repository started from a temporary copy
// of the default library, with the gavel binary built once and stock opa on the PATH.
func TestGovernanceTutorial(t *testing.T) {
	// -short skips it on a developer's machine only: under CI it always runs.
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds gavel and runs the tutorial (CI=true runs it even with -short)")
	}
	needTools(t, "bash", "git", "jq", "openssl")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	steps := tutorialSteps(t, filepath.Join(repo, "docs", "governance.md"))
	kinds := map[string]int{}
	for _, s := range steps {
		kinds[s.kind]++
	}
	if kinds["run"] < 8 || kinds["file"] < 2 || kinds["edit"] < 1 {
		t.Fatalf("the tutorial's annotated blocks look lost: %v", kinds)
	}

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "gavel"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	opaBin, err := exec.Command("go", "-C", repo, "tool", "-n", "opa").Output()
	if err != nil {
		t.Fatalf("go tool -n opa: %v", err)
	}
	if err := os.Symlink(strings.TrimSpace(string(opaBin)), filepath.Join(bin, "opa")); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, filepath.Join(repo, "policies"), filepath.Join(repo, "bundles"))
	checkout := filepath.Join(tmp, "checkout") // where the reader starts: beside it goes acme-policy
	os.MkdirAll(checkout, 0o755)
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "GAVEL="+repo,
		"HOME="+tmp, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")

	cwd := checkout
	var outputs []string // each run block's stdout and stderr, in order
	for _, s := range steps {
		switch s.kind {
		case "run":
			cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+s.body+"\npwd >&3\n")
			cmd.Dir, cmd.Env = cwd, env
			var out, pwd bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			r, w, _ := os.Pipe()
			cmd.ExtraFiles = []*os.File{w}
			err := cmd.Start()
			w.Close()
			if err == nil {
				pwd.ReadFrom(r)
				err = cmd.Wait()
			}
			r.Close()
			if err != nil {
				t.Fatalf("governance.md:%d: %v\n%s\n---\n%s", s.line, err, s.body, out.String())
			}
			cwd = strings.TrimSpace(pwd.String())
			outputs = append(outputs, out.String())
		case "file":
			if err := os.WriteFile(filepath.Join(cwd, s.path), []byte(s.body), 0o644); err != nil {
				t.Fatalf("governance.md:%d: %v", s.line, err)
			}
		case "edit":
			p := filepath.Join(cwd, s.path)
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("governance.md:%d: %v", s.line, err)
			}
			if n := strings.Count(string(raw), s.anchor); n != 1 {
				t.Fatalf("governance.md:%d: %q occurs %d times in %s, want once", s.line, s.anchor, n, s.path)
			}
			body := s.body // ends with a newline; the anchor may not
			if !strings.HasSuffix(s.anchor, "\n") {
				body = strings.TrimSuffix(body, "\n")
			}
			os.WriteFile(p, []byte(strings.Replace(string(raw), s.anchor, body, 1)), 0o644)
		}
	}
	all := strings.Join(outputs, "\n")
	t.Logf("tutorial output:\n%s", all)

	doc, _ := os.ReadFile(filepath.Join(repo, "docs", "governance.md"))
	summary := regexp.MustCompile(`replayed \d+ decisions against revision default-1\+…: (\d+ would change, \d+ unchanged, \d+ skipped)`).FindSubmatch(doc)
	if summary == nil {
		t.Fatal("governance.md shows no replay summary")
	}
	for _, want := range []string{
		"PASS: ",                        // gavel policy test and opa test
		"CHECK: the bundle decides all", // the activation check on the edited bundle
		`"code": "tier_not_allowed"`,    // step 4: the candidate denies the silver caller
		"loading the data",              // not used: --policy names both directories
		string(summary[1]),              // the replay's counts are the ones the tutorial shows
		"signed: true",
		"signed build/opa-bundle.tar.gz",
	} {
		if want == "loading the data" {
			if strings.Contains(all, want) {
				t.Errorf("the tutorial names both directories, yet gavel loaded data beside one")
			}
			continue
		}
		if !strings.Contains(all, want) {
			t.Errorf("the tutorial's output lacks %q", want)
		}
	}
	if strings.Contains(all, "FAIL") {
		t.Error("a test failed")
	}
	if m := regexp.MustCompile(`wrote build/bundle.tar.gz \(revision (\S+),`).FindStringSubmatch(all); m == nil || !strings.HasPrefix(m[1], "default-1+") {
		t.Errorf("bundle build revision: %v, want default-1+<content hash>", m)
	}
	// The eval of the built tarball decides as the directories did (the last two evals).
	if n := strings.Count(all, `"code": "tier_not_allowed"`); n < 2 {
		t.Errorf("tier_not_allowed %d times, want from the directories and from the tarball", n)
	}

	// The repository the tutorial made holds nothing to commit but the public key: the
	// private key and the build outputs are ignored.
	st, err := exec.Command("git", "-C", cwd, "status", "--porcelain", "--untracked-files=all").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(st)); !slices.Equal(got, []string{"??", "signing.pub.pem"}) {
		t.Errorf("git status after the tutorial: %q, want only signing.pub.pem untracked", st)
	}
	// Followed inside gavel's checkout instead, its .gitignore keeps the same files out.
	gi, err := os.ReadFile(filepath.Join(repo, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(checkout, ".gitignore"), gi, 0o644)
	if out, err := exec.Command("git", "-C", checkout, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	for _, f := range []string{"signing.pem", "build/bundle.tar.gz", "bundle.tar.gz", "gavel.tar.gz"} {
		if err := exec.Command("git", "-C", checkout, "check-ignore", "-q", f).Run(); err != nil {
			t.Errorf("gavel's .gitignore does not ignore %s", f)
		}
	}
	if after := treeHash(t, filepath.Join(repo, "policies"), filepath.Join(repo, "bundles")); after != before {
		t.Error("the tutorial changed gavel's own policies/ or bundles/")
	}
}
