// Package clientip decides who sent a request: the TCP peer, or behind
// trusted proxies the nearest address those proxies vouch for. Every rate
// limiter, the audit log and the access log key on this one answer, so a
// proxy in front of authd does not merge all clients into one, and a client
// cannot pick its own address with a header no trusted proxy wrote.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/authd/authd/internal/reqctx"
)

// Header names which header trusted proxies write.
type Header int

const (
	// XForwardedFor is X-Forwarded-For: comma-separated addresses, each
	// proxy appending the peer it saw.
	XForwardedFor Header = iota
	// Forwarded is RFC 7239's Forwarded: elements with for= parameters.
	Forwarded
)

// ParseHeader accepts "X-Forwarded-For" or "Forwarded" (any case).
func ParseHeader(s string) (Header, error) {
	switch {
	case strings.EqualFold(s, "X-Forwarded-For"):
		return XForwardedFor, nil
	case strings.EqualFold(s, "Forwarded"):
		return Forwarded, nil
	}
	return 0, fmt.Errorf("must be X-Forwarded-For or Forwarded, got %q", s)
}

// ParsePrefixes parses CIDRs ("10.0.0.0/8", "2001:db8::/32"); a bare
// address means only itself.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Masked() != p {
				return nil, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Resolver computes client addresses. The zero value trusts no proxy: the
// client is the TCP peer.
type Resolver struct {
	trusted []netip.Prefix
	header  Header
}

// NewResolver trusts the proxies in trusted to report, in header, who
// connected to them.
func NewResolver(trusted []netip.Prefix, header Header) Resolver {
	return Resolver{trusted: trusted, header: header}
}

// Addr returns the client address of r: when the TCP peer is a trusted
// proxy, the rightmost hop of the proxy header that is not itself a trusted
// proxy (hops left of it were written by the client and prove nothing);
// else the peer. When every hop is trusted it is the leftmost; when a hop
// cannot be parsed, the nearest trusted hop before it. Hot path: no
// allocation unless an address has an IPv6 zone.
func (res Resolver) Addr(r *http.Request) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	if len(res.trusted) == 0 || !res.isTrusted(peer) {
		return peer
	}
	vals := r.Header[textproto(res.header)]
	addr := peer
	// Right to left over the header's lines, then over each line's hops.
	for i := len(vals) - 1; i >= 0; i-- {
		line := vals[i]
		for line != "" {
			var hop string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				hop, line = line[j+1:], line[:j]
			} else {
				hop, line = line, ""
			}
			if res.header == Forwarded {
				hop = forwardedFor(hop)
			}
			a, ok := parseHop(hop)
			if !ok {
				return addr
			}
			addr = a
			if !res.isTrusted(a) {
				return a
			}
		}
	}
	return addr
}

// textproto is the canonical header key of h.
func textproto(h Header) string {
	if h == Forwarded {
		return "Forwarded"
	}
	return "X-Forwarded-For"
}

func (res Resolver) isTrusted(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop returns the address of one hop, trimmed of spaces, quotes, an
// IPv6 literal's brackets and a port; ok is false for anything else
// (RFC 7239 "unknown" and obfuscated identifiers included).
func parseHop(h string) (string, bool) {
	h = strings.TrimSpace(h)
	h = strings.Trim(h, `"`)
	if _, err := netip.ParseAddr(h); err == nil {
		return h, true
	}
	if _, err := netip.ParseAddrPort(h); err == nil {
		// Without the port; the brackets of an IPv6 literal go too.
		h = h[:strings.LastIndexByte(h, ':')]
		return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if _, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil {
			return h[1 : len(h)-1], true
		}
	}
	return "", false
}

// forwardedFor returns the for= value of one Forwarded element
// ("for=192.0.2.60;proto=http"), or "" when it has none.
func forwardedFor(elem string) string {
	for elem != "" {
		var pair string
		pair, elem, _ = strings.Cut(elem, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "for") {
			return v
		}
	}
	return ""
}

// Of returns the client address of r as the request middleware resolved it
// (httpx.Observe puts it in the request context), or the TCP peer for a
// request that did not pass the middleware.
func Of(r *http.Request) string {
	if ip := reqctx.ClientOf(r.Context()).IP; ip != "" {
		return ip
	}
	return Resolver{}.Addr(r)
}

// Key is the rate-limit key of a client address: IPv4 addresses as they
// are, IPv6 addresses by their /64 (one subscriber's network: a host can
// pick any address inside it), IPv4-mapped IPv6 as IPv4.
func Key(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() {
		return addr
	}
	if a.Is4In6() {
		return a.Unmap().String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
