package store

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// decodeRecord decodes one stored record. Endpoint records, ten thousand of
// them in a large state, take a fast path for the exact form json.Marshal
// writes: reflection-driven json.Unmarshal was most of a restore's store
// read (~8 µs a record). Anything the fast path does not expect — escapes,
// white space, null, an unknown or differently cased key, a bad value —
// goes to json.Unmarshal, so results and error messages are unchanged.
func decodeRecord[T any](data []byte, rec *T) error {
	if ep, ok := any(rec).(*Endpoint); ok {
		if decodeEndpoint(data, ep) {
			return nil
		}
		*ep = Endpoint{}
	}
	return json.Unmarshal(data, rec)
}

// scanner reads the compact JSON json.Marshal writes. Every method reports
// whether the input had the expected form; false means "use json.Unmarshal".
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) byte(c byte) bool {
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// rawString returns a string's contents without its quotes; strings with
// escapes, control characters or invalid UTF-8 are not for the fast path.
func (s *scanner) rawString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.pos
	ascii := true
	for ; s.pos < len(s.data); s.pos++ {
		switch c := s.data[s.pos]; {
		case c == '"':
			out := s.data[start:s.pos]
			s.pos++
			return out, ascii || utf8.Valid(out)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (s *scanner) str() (string, bool) {
	raw, ok := s.rawString()
	return string(raw), ok
}

// text decodes a string into a value with UnmarshalText, as json does.
func (s *scanner) text(dst interface{ UnmarshalText([]byte) error }) bool {
	raw, ok := s.rawString()
	return ok && dst.UnmarshalText(raw) == nil
}

// uint16 reads a number the way json reads one into a uint16.
func (s *scanner) uint16() (uint16, bool) {
	start, v := s.pos, uint32(0)
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		v = v*10 + uint32(s.data[s.pos]-'0')
		s.pos++
		if v > 0xffff {
			return 0, false
		}
	}
	n := s.pos - start
	return uint16(v), n == 1 || n > 1 && s.data[start] != '0'
}

// object calls field for each key of an object until it returns false.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		key, ok := s.rawString()
		if !ok || !s.byte(':') || !field(key) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// decodeEndpoint fills ep from data if data is in json.Marshal's form.
func decodeEndpoint(data []byte, ep *Endpoint) bool {
	s := &scanner{data: data}
	ok := s.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "Name":
			ep.Name, ok = s.str()
		case "ID":
			ep.ID, ok = s.str()
		case "Network":
			ep.Network, ok = s.str()
		case "Addr":
			ok = s.text(&ep.Addr)
		case "MAC":
			ep.MAC, ok = s.str()
		case "NetNS":
			ep.NetNS, ok = s.str()
		case "HostVeth":
			ep.HostVeth, ok = s.str()
		case "PeerName":
			ep.PeerName, ok = s.str()
		case "Ports":
			ep.Ports, ok = s.ports()
		case "Created":
			ok = s.text(&ep.Created)
		}
		return ok
	})
	return ok && s.pos == len(data)
}

func (s *scanner) ports() ([]Port, bool) {
	if bytes.HasPrefix(s.data[s.pos:], []byte("null")) {
		s.pos += len("null")
		return nil, true
	}
	if !s.byte('[') {
		return nil, false
	}
	out := []Port{}
	if s.byte(']') {
		return out, true
	}
	for {
		var p Port
		ok := s.object(func(key []byte) bool {
			var ok bool
			switch string(key) {
			case "Proto":
				p.Proto, ok = s.str()
			case "HostIP":
				ok = s.text(&p.HostIP)
			case "HostPort":
				p.HostPort, ok = s.uint16()
			case "ContainerPort":
				p.ContainerPort, ok = s.uint16()
			}
			return ok
		})
		if !ok {
			return nil, false
		}
		out = append(out, p)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}
