package ports

import (
	"errors"
	"strings"
	"testing"
)

// bindings parses each string with ParseBinding.
func bindings(t testing.TB, specs ...string) []Binding {
	t.Helper()
	out := make([]Binding, 0, len(specs))
	for _, s := range specs {
		out = append(out, bind(t, s))
	}
	return out
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name      string
		spec      string
		taken     []string
		ephemeral PortRange // zero: DefaultEphemeral()
		want      []string
	}{
		{name: "fixed", spec: "8080:80", want: []string{"0.0.0.0:8080->80/tcp"}},
		{name: "fixed on an IP", spec: "127.0.0.1:8080:80/udp", want: []string{"127.0.0.1:8080->80/udp"}},
		{name: "picked", spec: "80", want: []string{"0.0.0.0:49153->80/tcp"}},
		{name: "picked on an IP", spec: "127.0.0.1::80", want: []string{"127.0.0.1:49153->80/tcp"}},
		{name: "picked skips taken", spec: "80",
			taken: []string{"0.0.0.0:49153->1/tcp", "127.0.0.1:49154->1/tcp", "0.0.0.0:49155->1/udp"},
			want:  []string{"0.0.0.0:49155->80/tcp"}},
		{name: "picked on an IP ignores other IPs", spec: "127.0.0.1::80",
			taken: []string{"10.0.0.1:49153->1/tcp", "127.0.0.1:49154->1/tcp"},
			want:  []string{"127.0.0.1:49153->80/tcp"}},
		{name: "picked range", spec: "80-82/udp", taken: []string{"0.0.0.0:49154->1/udp"},
			want: []string{"0.0.0.0:49153->80/udp", "0.0.0.0:49155->81/udp", "0.0.0.0:49156->82/udp"}},
		{name: "custom ephemeral", spec: "80", ephemeral: PortRange{30000, 30001},
			taken: []string{"0.0.0.0:30000->1/tcp"}, want: []string{"0.0.0.0:30001->80/tcp"}},
		{name: "ephemeral ending at 65535", spec: "80-81", ephemeral: PortRange{65534, 65535},
			want: []string{"0.0.0.0:65534->80/tcp", "0.0.0.0:65535->81/tcp"}},
		{name: "pairwise", spec: "8000-8002:80-82",
			want: []string{"0.0.0.0:8000->80/tcp", "0.0.0.0:8001->81/tcp", "0.0.0.0:8002->82/tcp"}},
		{name: "pick from host range", spec: "8000-8010:80",
			taken: []string{"0.0.0.0:8000->1/tcp", "127.0.0.1:8001->1/tcp"},
			want:  []string{"0.0.0.0:8002->80/tcp"}},
		{name: "pick from host range on an IP", spec: "127.0.0.2:8000-8010:80",
			taken: []string{"127.0.0.1:8000->1/tcp"}, want: []string{"127.0.0.2:8000->80/tcp"}},
		{name: "other protocol does not conflict", spec: "8080:80/udp",
			taken: []string{"0.0.0.0:8080->80/tcp"}, want: []string{"0.0.0.0:8080->80/udp"}},
		{name: "other IP does not conflict", spec: "127.0.0.2:8080:80",
			taken: []string{"127.0.0.1:8080->80/tcp"}, want: []string{"127.0.0.2:8080->80/tcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			ephemeral := tt.ephemeral
			if ephemeral.IsZero() {
				ephemeral = DefaultEphemeral()
			}
			taken := bindings(t, tt.taken...)
			got, err := Expand(spec, taken, ephemeral)
			if err != nil {
				t.Fatalf("Expand(%s): %v", spec, err)
			}
			if want := bindings(t, tt.want...); !equalBindings(got, want) {
				t.Fatalf("Expand(%s) = %v, want %v", spec, got, want)
			}
			for _, b := range got {
				for _, published := range taken {
					if b.Conflicts(published) {
						t.Errorf("Expand gave %s, which conflicts with taken %s", b, published)
					}
				}
			}
			if again, _ := Expand(spec, taken, ephemeral); !equalBindings(again, got) {
				t.Errorf("Expand is not deterministic: %v then %v", got, again)
			}
		})
	}
}

func equalBindings(a, b []Binding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		name      string
		spec      Spec
		taken     []string
		ephemeral PortRange
		check     func(error) bool
		wantParts []string
	}{
		{name: "fixed port taken", spec: mustSpec(t, "8080:80"), taken: []string{"0.0.0.0:8080->90/tcp"},
			check: IsConflict, wantParts: []string{"0.0.0.0:8080/tcp", "already published as 0.0.0.0:8080->90/tcp"}},
		{name: "fixed port taken on every address", spec: mustSpec(t, "127.0.0.1:8080:80"),
			taken: []string{"0.0.0.0:8080->90/tcp"}, check: IsConflict,
			wantParts: []string{"127.0.0.1:8080/tcp", "0.0.0.0:8080->90/tcp"}},
		{name: "every address over a specific one", spec: mustSpec(t, "8080:80"),
			taken: []string{"127.0.0.1:8080->90/tcp"}, check: IsConflict, wantParts: []string{"127.0.0.1:8080->90/tcp"}},
		{name: "one of a pairwise range taken", spec: mustSpec(t, "8000-8002:80-82"),
			taken: []string{"0.0.0.0:8002->1/tcp"}, check: IsConflict, wantParts: []string{"8002", "container port 82"}},
		{name: "host range full", spec: mustSpec(t, "8000-8002:80"),
			taken: []string{"0.0.0.0:8000->1/tcp", "0.0.0.0:8001->1/tcp", "127.0.0.1:8002->1/tcp"},
			check: IsNoFreePort, wantParts: []string{"no free host port in 8000-8002 for 80/tcp"}},
		{name: "host range full on an IP", spec: mustSpec(t, "127.0.0.1:8000-8001:80/udp"),
			taken: []string{"0.0.0.0:8000->1/udp", "127.0.0.1:8001->1/udp"},
			check: IsNoFreePort, wantParts: []string{"no free host port in 8000-8001 on 127.0.0.1 for 80/udp"}},
		{name: "ephemeral exhausted mid-range", spec: mustSpec(t, "80-82"), ephemeral: PortRange{40000, 40001},
			check: IsNoFreePort, wantParts: []string{"no free host port in 40000-40001 for 82/tcp"}},
		{name: "bad ephemeral", spec: mustSpec(t, "80"), ephemeral: PortRange{5, 4},
			wantParts: []string{"ephemeral port range 5-4 is reversed"}},
		{name: "zero ephemeral", spec: mustSpec(t, "80"), ephemeral: PortRange{},
			wantParts: []string{"ephemeral port range is unset"}},
		{name: "invalid spec", spec: Spec{ContainerPorts: PortRange{0, 3}}, ephemeral: DefaultEphemeral(),
			wantParts: []string{"expand port spec", "port 0"}},
		{name: "mismatched ranges", spec: Spec{HostPorts: PortRange{1, 2}, ContainerPorts: PortRange{1, 3}},
			ephemeral: DefaultEphemeral(), wantParts: []string{"equal length"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ephemeral := tt.ephemeral
			if ephemeral.IsZero() && tt.name != "zero ephemeral" {
				ephemeral = DefaultEphemeral()
			}
			got, err := Expand(tt.spec, bindings(t, tt.taken...), ephemeral)
			if err == nil {
				t.Fatalf("Expand(%s) = %v, want an error", tt.spec, got)
			}
			if got != nil {
				t.Errorf("Expand(%s) returned bindings %v with its error", tt.spec, got)
			}
			if tt.check != nil && !tt.check(err) {
				t.Errorf("error %v is not of the expected kind", err)
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

func TestExpandConflictNamesBothBindings(t *testing.T) {
	existing := bind(t, "0.0.0.0:8080->90/tcp")
	_, err := Expand(mustSpec(t, "8080:80"), []Binding{existing}, DefaultEphemeral())
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("error %v is not a *ConflictError", err)
	}
	if conflict.Existing != existing || conflict.Wanted != bind(t, "0.0.0.0:8080->80/tcp") {
		t.Errorf("ConflictError = %+v", conflict)
	}
}

func TestExpandWholeEphemeralRange(t *testing.T) {
	// Fill all but the last ephemeral port; Expand must still find it.
	ephemeral := DefaultEphemeral()
	var taken []Binding
	for port := ephemeral.First; port < ephemeral.Last; port++ {
		taken = append(taken, Binding{Proto: TCP, HostPort: port, ContainerPort: 80})
	}
	got, err := Expand(mustSpec(t, "80"), taken, ephemeral)
	if err != nil || len(got) != 1 || got[0].HostPort != ephemeral.Last {
		t.Fatalf("Expand = %v, %v; want host port %d", got, err, ephemeral.Last)
	}
	taken = append(taken, got...)
	if _, err := Expand(mustSpec(t, "80"), taken, ephemeral); !IsNoFreePort(err) {
		t.Fatalf("Expand with the range full: %v, want a NoFreePortError", err)
	}
}

func mustSpec(t testing.TB, s string) Spec {
	t.Helper()
	spec, err := ParseSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}
