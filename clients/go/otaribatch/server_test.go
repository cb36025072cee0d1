package otaribatch_test

// The tests run against a real otari-batch-grpc server proxying a real gateway simulator, both started here on
// loopback with port 0, from the repository's .venv (OTARI_REPO_ROOT, or found by walking up from here).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	serverAddr string // host:port of the gRPC server
	simURL     string // base URL of the gateway simulator
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "otaribatch-go-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	sim, simOut, err := start(filepath.Join(root, ".venv/bin/otari-batch-simulator"),
		[]string{"--host", "127.0.0.1", "--port", "0", "--stage-seconds", "0.4"}, nil,
		regexp.MustCompile(`(http://127\.0\.0\.1:\d+)`))
	if err != nil {
		fmt.Fprintln(os.Stderr, "simulator:", err)
		return 1
	}
	defer stop(sim)
	simURL = simOut

	srv, port, err := start(filepath.Join(root, ".venv/bin/otari-batch-grpc"), nil, []string{
		"GATEWAY_URL=" + simURL, "GRPC_LISTEN=127.0.0.1:0", "STATE_DB=" + filepath.Join(tmp, "state.db"),
		"WATCH_POLL_MIN=0.1", "WATCH_POLL_MAX=0.3", "WATCH_HEARTBEAT=2", "SHUTDOWN_GRACE=1",
	}, regexp.MustCompile(`serving on \S+ \(port (\d+)\)`))
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		return 1
	}
	defer stop(srv)
	serverAddr = "127.0.0.1:" + port
	return m.Run()
}

func repoRoot() (string, error) {
	if root := os.Getenv("OTARI_REPO_ROOT"); root != "" {
		return root, nil
	}
	wd, _ := os.Getwd()
	real, _ := filepath.EvalSymlinks(wd)
	for _, dir := range []string{wd, real} {
		for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, ".venv/bin/otari-batch-grpc")); err == nil {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("no .venv/bin/otari-batch-grpc above %s: run `make test` (or set OTARI_REPO_ROOT)", wd)
}

// start runs a program, drains its output (echoed when OTARI_TEST_LOGS is set) and returns the first match of
// ready's group 1 in it; if the program exits first, the error carries its last lines.
func start(path string, args, env []string, ready *regexp.Regexp) (*exec.Cmd, string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(append(os.Environ(), "PYTHONUNBUFFERED=1"), env...)
	cmd.SysProcAttr = dieWithParent()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	found, ended := make(chan string, 1), make(chan []string)
	go func() {
		var tail []string
		out := found // set to nil once the ready line was seen
		scanner := bufio.NewScanner(pr)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		for scanner.Scan() {
			line := scanner.Text()
			if os.Getenv("OTARI_TEST_LOGS") != "" {
				fmt.Fprintf(os.Stderr, "[%s] %s\n", filepath.Base(path), line)
			}
			if m := ready.FindStringSubmatch(line); m != nil && out != nil {
				out <- m[1]
				out, tail = nil, nil
			}
			if out != nil {
				tail = append(tail, line)
			}
		}
		io.Copy(io.Discard, pr) //nolint:errcheck // keep draining after an overlong line
		ended <- tail
	}()
	go func() { cmd.Wait(); pw.Close() }() //nolint:errcheck // exit is seen as the end of output
	select {
	case v := <-found:
		go func() { <-ended }()
		return cmd, v, nil
	case tail := <-ended:
		stop(cmd)
		if len(tail) > 30 {
			tail = tail[len(tail)-30:]
		}
		return nil, "", fmt.Errorf("%s exited before it was ready:\n%s", path, strings.Join(tail, "\n"))
	case <-time.After(30 * time.Second):
		stop(cmd)
		return nil, "", fmt.Errorf("%s did not say it was ready within 30s", path)
	}
}

// stop ends a process this test started, by its pid: SIGTERM, then SIGKILL after 10 s.
func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // already gone is fine
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.Process.Signal(syscall.Signal(0)) != nil || cmd.ProcessState != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill() //nolint:errcheck // already gone is fine
}

// simulator calls one of the simulator's control routes.
func simulator(t *testing.T, method, path string, body interface{}) map[string]interface{} {
	t.Helper()
	var reader io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		reader = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, simURL+path, reader)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]interface{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("simulator %s %s: %d %v", method, path, resp.StatusCode, err)
	}
	return out
}

// opCount is how many gateway calls of one kind ("create", "results", ...) the simulator has seen.
func opCount(t *testing.T, op string) int {
	requests, _ := simulator(t, "GET", "/_simulator/stats", nil)["requests"].(map[string]interface{})
	n, _ := requests[op].(float64)
	return int(n)
}

func bigContent(i int) string { return fmt.Sprintf("question %d ", i) + strings.Repeat("x", 2000) }
