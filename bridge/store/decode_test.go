package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeRecord must give exactly what json.Unmarshal gives, value and
// error, whatever the input.
func checkDecodeLikeJSON(t *testing.T, data []byte) {
	t.Helper()
	var fast, slow Endpoint
	errFast, errSlow := decodeRecord(data, &fast), json.Unmarshal(data, &slow)
	if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
		t.Fatalf("decode %s: error %v, json.Unmarshal says %v", data, errFast, errSlow)
	}
	if errSlow == nil && !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decode %s:\n got %+v\nwant %+v", data, fast, slow)
	}
}

func TestDecodeEndpointLikeJSON(t *testing.T) {
	full := &Endpoint{Name: "web", ID: "abc", Network: "n1", Addr: netip.MustParseAddr("172.18.0.2"),
		MAC: "02:42:ac:12:00:02", NetNS: "/run/netns/c1", HostVeth: "nbv1", PeerName: "nbp1",
		Ports: []Port{{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80},
			{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 65535, ContainerPort: 0}},
		Created: time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))}
	canonical, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := json.Marshal(&Endpoint{})
	noPorts, _ := json.Marshal(&Endpoint{Name: "x", Ports: []Port{}})
	for _, in := range []string{
		string(canonical), string(empty), string(noPorts), `{}`, `{"Ports":null}`,
		`{"name":"lower"}`, `{"Name":"a\"b"}`, `{"Name":"é"}`, "{\"Name\":\"\xff\"}", `{ "Name":"a"}`,
		`{"Name":null}`, `{"Unknown":1}`, `{"Addr":"300.1.1.1"}`, `{"Addr":""}`, `{"Ports":[{"HostPort":65536}]}`,
		`{"Ports":[{"HostPort":-1}]}`, `{"Ports":[{"HostPort":08}]}`, `{"Ports":[{"HostPort":1e3}]}`,
		`{"Ports":[{"HostPort":0}]}`, `{"Created":"yesterday"}`, `{"Name":"a"}x`, `{"Name":"a",}`, `[]`, ``,
		`{"Name":"a","Name":"b"}`, `{"Ports":[{"Proto":"tcp"},{"Proto":"udp"}],"Ports":[]}`,
	} {
		checkDecodeLikeJSON(t, []byte(in))
	}
}

func FuzzDecodeEndpoint(f *testing.F) {
	canonical, _ := json.Marshal(&Endpoint{Name: "web", Addr: netip.MustParseAddr("172.18.0.2"),
		Ports: []Port{{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80}}})
	f.Add(canonical)
	f.Add([]byte(`{"Ports":null,"Created":"2025-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkDecodeLikeJSON(t, data) })
}

// A parallel decode reports the first bad record in key order, as a
// sequential one does.
func TestDecodeAllFirstError(t *testing.T) {
	var keys, values [][]byte
	for i := range 4000 {
		keys = append(keys, fmt.Appendf(nil, "ep%04d", i))
		values = append(values, fmt.Appendf(nil, `{"Name":"ep%04d"}`, i))
	}
	values[2100], values[3900] = []byte(`{"Addr":"bad"}`), []byte(`{`)
	recs := make([]Endpoint, len(keys))
	err := decodeAll("endpoints", keys, values, recs)
	if err == nil || !strings.Contains(err.Error(), `decode endpoints record "ep2100"`) {
		t.Fatalf("decodeAll = %v, want the error of ep2100", err)
	}
	values[2100] = []byte(`{"Name":"ep2100"}`)
	values[3900] = values[2100]
	if err := decodeAll("endpoints", keys, values, recs); err != nil || recs[3999].Name != "ep3999" {
		t.Fatalf("decodeAll = %v, last record %+v", err, recs[3999])
	}
}
