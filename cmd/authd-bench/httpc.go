package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// newClient is a keep-alive client for conns concurrent connections that
// never follows redirects (the flows check each hop themselves).
func newClient(conns int, local net.IP) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// sourceIPs hands out distinct loopback source addresses (127.1.0.1,
// 127.1.0.2, …). authd limits logins and registrations per client IP, as it
// should; the login and registration scenarios measure the work behind that
// limit, as many real users from many addresses would cause it, so each
// worker moves to a fresh address before its bucket runs dry.
type sourceIPs struct{ n atomic.Uint32 }

func (s *sourceIPs) next() net.IP {
	v := s.n.Add(1)
	return net.IPv4(127, byte(1+v>>16), byte(v>>8), byte(v))
}

// rotatingClient is one worker's keep-alive client that moves to a new
// source address every `every` requests.
type rotatingClient struct {
	ips   *sourceIPs
	every int
	used  int
	c     *http.Client
}

func (r *rotatingClient) client() *http.Client {
	if r.c == nil || r.used >= r.every {
		if r.c != nil {
			r.c.CloseIdleConnections()
		}
		r.c = newClient(1, r.ips.next())
		r.used = 0
	}
	r.used++
	return r.c
}

// response is a fully read answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends req and reads the whole body, so the connection is reused.
func do(c *http.Client, req *http.Request) (*response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// unexpected describes an answer the scenario did not want, briefly.
func (r *response) unexpected(what string) error {
	b := string(r.Body)
	if len(b) > 200 {
		b = b[:200] + "…"
	}
	return fmt.Errorf("%s: HTTP %d: %s", what, r.Status, strings.TrimSpace(b))
}

func postForm(ctx context.Context, c *http.Client, u string, form url.Values, user, pass string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return do(c, req)
}

func postJSON(ctx context.Context, c *http.Client, u, bearer, body string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(c, req)
}

func get(ctx context.Context, c *http.Client, u string, cookies []*http.Cookie) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	return do(c, req)
}
