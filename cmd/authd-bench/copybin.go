package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// PostgreSQL's binary COPY format, written by hand for the production-size
// world's loader: the server then only copies bytes into its tuples (no
// text parsing of numbers, uuids, timestamps and bytea), and Go appends
// values without boxing them as pgx.CopyFrom would.

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

var copyTrailer = []byte{0xff, 0xff}

// pgEpochMicros is 2000-01-01 00:00:00 UTC, binary timestamptz's zero, in
// Unix microseconds.
const pgEpochMicros = 946684800000000

type rowBuf []byte

func (b rowBuf) row(fields int) rowBuf { return binary.BigEndian.AppendUint16(b, uint16(fields)) }

func (b rowBuf) null() rowBuf { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

func (b rowBuf) int8(v int64) rowBuf {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func (b rowBuf) bool(v bool) rowBuf {
	b = binary.BigEndian.AppendUint32(b, 1)
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func (b rowBuf) text(s string) rowBuf {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func (b rowBuf) bytea(p []byte) rowBuf {
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// raw appends an already encoded field (length and value), e.g. a constant
// array from textArray.
func (b rowBuf) raw(p []byte) rowBuf { return append(b, p...) }

// jsonb is version 1 followed by the JSON text (the server parses it).
func (b rowBuf) jsonb(s string) rowBuf {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)+1))
	b = append(b, 1)
	return append(b, s...)
}

func (b rowBuf) timestamptz(t time.Time) rowBuf {
	return b.int8(t.UnixMicro() - pgEpochMicros)
}

// uuid appends the canonical text form s (8-4-4-4-12 hex digits) as 16 bytes.
func (b rowBuf) uuid(s string) rowBuf {
	b = binary.BigEndian.AppendUint32(b, 16)
	var u [16]byte
	j := 0
	for i := 0; i < len(s) && j < 16; i++ {
		if s[i] == '-' {
			continue
		}
		u[j] = unhex(s[i])<<4 | unhex(s[i+1])
		i++
		j++
	}
	return append(b, u[:]...)
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// textArray is a one-dimensional text[] field, encoded once.
func textArray(elems ...string) []byte {
	var v []byte
	if len(elems) == 0 {
		v = binary.BigEndian.AppendUint32(v, 0) // no dimensions
		v = binary.BigEndian.AppendUint32(v, 0) // no nulls
		v = binary.BigEndian.AppendUint32(v, 25)
	} else {
		v = binary.BigEndian.AppendUint32(v, 1)
		v = binary.BigEndian.AppendUint32(v, 0)
		v = binary.BigEndian.AppendUint32(v, 25) // text
		v = binary.BigEndian.AppendUint32(v, uint32(len(elems)))
		v = binary.BigEndian.AppendUint32(v, 1) // lower bound
		for _, e := range elems {
			v = binary.BigEndian.AppendUint32(v, uint32(len(e)))
			v = append(v, e...)
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(v))), v...)
}

// hexUUID formats a 16-byte digest as Postgres prints md5(…)::uuid.
func hexUUID(h [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], h[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], h[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], h[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], h[8:10])
	s[23] = '-'
	hex.Encode(s[24:], h[10:])
	return string(s[:])
}

// chunkReader is the COPY data: the header, the chunks received in order,
// then the trailer once chunks is closed.
type chunkReader struct {
	ctx     context.Context
	chunks  <-chan []byte
	free    chan<- []byte // optional: where sent chunks go back, for reuse
	cur     []byte
	last    []byte // the chunk cur is in
	started bool
	done    bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if !r.started {
		r.started = true
		r.cur = copyHeader
	}
	for len(r.cur) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if r.free != nil && r.last != nil {
			select {
			case r.free <- r.last[:0]:
			default:
			}
			r.last = nil
		}
		select {
		case c, ok := <-r.chunks:
			if !ok {
				r.done = true
				r.cur = copyTrailer
			} else {
				r.cur, r.last = c, c
			}
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// copyFreeze empties table and fills it with the binary COPY data r
// yields, in one transaction on a connection of its own: a table truncated
// in the loading transaction is not WAL-logged at wal_level = minimal, and
// COPY … FREEZE writes its rows frozen, with hint bits and the visibility
// map set, so nothing has to rewrite the pages afterwards (VACUUM finds
// them all-visible and skips them).
func copyFreeze(ctx context.Context, pool *pgxpool.Pool, table, columns string, r io.Reader) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "TRUNCATE "+table); err != nil {
		return fmt.Errorf("truncate %s: %w", table, err)
	}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary, FREEZE)", table, columns)
	if _, err := conn.Conn().PgConn().CopyFrom(ctx, r, sql); err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	return tx.Commit(ctx)
}

// chunker collects rows into chunks of about chunkSize bytes and sends
// them on out.
type chunker struct {
	ctx  context.Context
	out  chan<- []byte
	free chan []byte // chunks the COPY has sent, for reuse
	b    rowBuf
}

const chunkSize = 1 << 20

func newChunker(ctx context.Context, out chan<- []byte) *chunker {
	return &chunker{ctx: ctx, out: out, free: make(chan []byte, 8), b: make(rowBuf, 0, chunkSize+chunkSize/4)}
}

func (c *chunker) flush() error {
	if len(c.b) == 0 {
		return nil
	}
	select {
	case c.out <- c.b:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	c.b = reuse(c.free, chunkSize+chunkSize/4)
	return nil
}

// reuse returns a buffer from free, or a new one of capacity n.
func reuse(free <-chan []byte, n int) rowBuf {
	select {
	case b := <-free:
		return b
	default:
		return make(rowBuf, 0, n)
	}
}

// full flushes once the chunk is big enough.
func (c *chunker) full() error {
	if len(c.b) >= chunkSize {
		return c.flush()
	}
	return nil
}

// fillTable runs gen, which appends rows to c.b and calls c.full after
// each, beside copyFreeze of what it writes.
func fillTable(ctx context.Context, pool *pgxpool.Pool, table, columns string, gen func(c *chunker) error) error {
	g, ctx := errgroup.WithContext(ctx)
	ch := make(chan []byte, 4)
	c := newChunker(ctx, ch)
	g.Go(func() error {
		defer close(ch)
		if err := gen(c); err != nil {
			return err
		}
		return c.flush()
	})
	g.Go(func() error {
		return copyFreeze(ctx, pool, table, columns, &chunkReader{ctx: ctx, chunks: ch, free: c.free})
	})
	return g.Wait()
}

// copySelect fills table with what query returns, through binary COPY
// (query's columns must have the table's types): the rows SQL computes,
// written frozen as copyFreeze does.
func copySelect(ctx context.Context, pool *pgxpool.Pool, table, columns, query string) error {
	g, ctx := errgroup.WithContext(ctx)
	pr, pw := io.Pipe()
	g.Go(func() error {
		conn, err := pool.Acquire(ctx)
		if err == nil {
			_, err = conn.Conn().PgConn().CopyTo(ctx, pw, "COPY ("+query+") TO STDOUT (FORMAT binary)")
			conn.Release()
		}
		pw.CloseWithError(err) // nil: EOF for the reader
		return err
	})
	g.Go(func() error {
		err := copyFreeze(ctx, pool, table, columns, pr)
		pr.CloseWithError(errors.Join(err, io.ErrClosedPipe)) // unblocks the writer if COPY FROM stopped early
		return err
	})
	return g.Wait()
}
