package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// bucketPorts indexes every published port: key "proto/hostport/hostip"
// (host port zero-padded to 5 digits so keys sort by port), value
// "endpoint/containerport". It lets a publish check conflicts and pick free ports
// without reading every endpoint: the hot path stays O(1) in the number of
// published ports. Both Update and UpdateTx keep it in step.
const bucketPorts = "ports"

// PortEntry is one index entry: a binding and the endpoint holding it.
type PortEntry struct {
	Port     Port
	Endpoint string
}

func portKey(p Port) []byte {
	hostIP := p.HostIP
	if !hostIP.IsValid() {
		hostIP = netip.IPv4Unspecified()
	}
	return []byte(fmt.Sprintf("%s/%05d/%s", p.Proto, p.HostPort, hostIP))
}

func parsePortKey(k []byte) (Port, error) {
	parts := bytes.SplitN(k, []byte("/"), 3)
	if len(parts) != 3 {
		return Port{}, fmt.Errorf("bad port index key %q", k)
	}
	port, err := strconv.ParseUint(string(parts[1]), 10, 16)
	if err != nil {
		return Port{}, fmt.Errorf("bad port index key %q: %w", k, err)
	}
	ip, err := netip.ParseAddr(string(parts[2]))
	if err != nil {
		return Port{}, fmt.Errorf("bad port index key %q: %w", k, err)
	}
	return Port{Proto: string(parts[0]), HostPort: uint16(port), HostIP: ip}, nil
}

// reindexEndpoint moves the index entries of one endpoint from old's ports
// to next's (either may be nil).
func reindexEndpoint(tx *bolt.Tx, old, next *Endpoint) error {
	b := tx.Bucket([]byte(bucketPorts))
	if old != nil {
		for _, p := range old.Ports {
			if err := b.Delete(portKey(p)); err != nil {
				return fmt.Errorf("unindex port %v of %q: %w", p, old.Name, err)
			}
		}
	}
	if next != nil {
		for _, p := range next.Ports {
			value := next.Name + "/" + strconv.Itoa(int(p.ContainerPort))
			if err := b.Put(portKey(p), []byte(value)); err != nil {
				return fmt.Errorf("index port %v of %q: %w", p, next.Name, err)
			}
		}
	}
	return nil
}

// rebuildPortIndex fills the index from the endpoints (a file written
// before the index existed).
func rebuildPortIndex(tx *bolt.Tx) error {
	if tx.Bucket([]byte(bucketPorts)) != nil {
		return nil
	}
	if _, err := tx.CreateBucket([]byte(bucketPorts)); err != nil {
		return err
	}
	eps := map[string]*Endpoint{}
	if err := readBucket(tx, bucketEndpoints, nil, eps); err != nil {
		return err
	}
	for _, ep := range eps {
		if err := reindexEndpoint(tx, nil, ep); err != nil {
			return err
		}
	}
	return nil
}

// Tx is a read-write transaction that reads only the records it is asked
// for. Changes are committed when the UpdateTx function returns nil.
type Tx struct {
	tx *bolt.Tx
}

// UpdateTx runs fn in one read-write transaction under the exclusive file
// lock, like Update, but without decoding the whole state: the fast path for
// operations that touch one endpoint.
func (s *Store) UpdateTx(fn func(*Tx) error) error {
	return s.writeTx(func(tx *bolt.Tx, _ bool) (bool, error) {
		return true, fn(&Tx{tx: tx})
	})
}

func getRecord[T any](tx *bolt.Tx, bucket, name string) (*T, error) {
	v := tx.Bucket([]byte(bucket)).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	rec := new(T)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("decode %s record %q: %w", bucket, name, err)
	}
	return rec, nil
}

// Network returns the named network, or nil.
func (t *Tx) Network(name string) (*Network, error) {
	return getRecord[Network](t.tx, bucketNetworks, name)
}

// Endpoint returns the named endpoint, or nil.
func (t *Tx) Endpoint(name string) (*Endpoint, error) {
	return getRecord[Endpoint](t.tx, bucketEndpoints, name)
}

// EndpointByID scans for the endpoint with this ID (the slow path for
// callers that only know Docker's ID), or nil.
func (t *Tx) EndpointByID(id string) (*Endpoint, error) {
	var found *Endpoint
	err := t.tx.Bucket([]byte(bucketEndpoints)).ForEach(func(k, v []byte) error {
		if found != nil || !bytes.Contains(v, []byte(id)) {
			return nil
		}
		ep := new(Endpoint)
		if err := json.Unmarshal(v, ep); err != nil {
			return fmt.Errorf("decode endpoint record %q: %w", k, err)
		}
		if ep.ID == id {
			found = ep
		}
		return nil
	})
	return found, err
}

// PutEndpoint writes an existing or new endpoint and re-indexes its ports.
func (t *Tx) PutEndpoint(ep *Endpoint) error {
	old, err := t.Endpoint(ep.Name)
	if err != nil {
		return err
	}
	enc, err := json.Marshal(ep)
	if err != nil {
		return fmt.Errorf("encode endpoint record %q: %w", ep.Name, err)
	}
	if err := t.tx.Bucket([]byte(bucketEndpoints)).Put([]byte(ep.Name), enc); err != nil {
		return fmt.Errorf("put endpoint record %q: %w", ep.Name, err)
	}
	return reindexEndpoint(t.tx, old, ep)
}

// PortsIn returns the published ports of proto whose host port lies in
// [first, last], in port order.
func (t *Tx) PortsIn(proto string, first, last uint16) ([]PortEntry, error) {
	var out []PortEntry
	c := t.tx.Bucket([]byte(bucketPorts)).Cursor()
	start := []byte(fmt.Sprintf("%s/%05d/", proto, first))
	end := []byte(fmt.Sprintf("%s/%05d/~", proto, last))
	for k, v := c.Seek(start); k != nil && bytes.Compare(k, end) <= 0; k, v = c.Next() {
		p, err := parsePortKey(k)
		if err != nil {
			return nil, err
		}
		name, containerPort, _ := bytes.Cut(v, []byte("/"))
		cp, err := strconv.ParseUint(string(containerPort), 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad port index value %q: %w", v, err)
		}
		p.ContainerPort = uint16(cp)
		out = append(out, PortEntry{Port: p, Endpoint: string(name)})
	}
	return out, nil
}

// State reads the whole state (the slow path, for a full reconcile).
func (t *Tx) State() (*State, error) {
	st, _, err := readState(t.tx, false, nil)
	return st, err
}
