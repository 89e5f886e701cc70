package main

import "sync"

// store keeps notes in memory: the example is about tokens and credits,
// not persistence.
type store struct {
	mu    sync.Mutex
	notes []Note
	keys  map[string]Note // author + "\x00" + idempotency key
}

func newStore() *store { return &store{keys: map[string]Note{}} }

func (s *store) list() []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Note{}, s.notes...)
}

func (s *store) byKey(author, key string) (Note, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.keys[author+"\x00"+key]
	return n, ok
}

// add stores n under the key unless a concurrent request with the same key
// won; it returns the stored note either way.
func (s *store) add(author, key string, n Note) Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.keys[author+"\x00"+key]; ok {
		return prev
	}
	s.keys[author+"\x00"+key] = n
	s.notes = append(s.notes, n)
	return n
}
