package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// helloHandler is the bare net/http baseline: no router, no middleware, no
// database; the most any handler on this machine can do.
func helloHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "hello\n")
}

// serveHello is the -serve-hello mode: listen on loopback, print the address,
// serve until stdin closes (the parent went away).
func serveHello() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(helloHandler), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// helloProcess is the bare server in a process of its own, so it is
// measured as authd is: a separate program sharing the cores with the
// generator.
type helloProcess struct {
	URL   string
	PID   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startHello(ctx context.Context) (*helloProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-serve-hello")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bare http server: %w", err)
	}
	return &helloProcess{URL: "http://" + strings.TrimSpace(line), PID: cmd.Process.Pid, cmd: cmd, stdin: stdin}, nil
}

func (h *helloProcess) stop() {
	_ = h.stdin.Close()
	_ = h.cmd.Wait()
}

// helloWorker is the bare server's scenario: GET / over keep-alive.
func helloWorker(c *http.Client, base string) NewWorker {
	return func(context.Context, int) (Op, error) {
		return func(ctx context.Context) error {
			r, err := get(ctx, c, base+"/", nil)
			if err != nil {
				return err
			}
			if r.Status != http.StatusOK {
				return r.unexpected("hello")
			}
			return nil
		}, nil
	}
}
