package driver

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestIDAndPrefixRules checks the hand-written checks against the regular
// expressions they replace, on edge cases and on random strings.
func TestIDAndPrefixRules(t *testing.T) {
	id := regexp.MustCompile(`^[0-9a-zA-Z]{12,64}$`)
	prefix := regexp.MustCompile(`^[a-zA-Z]{1,10}$`)
	cases := []string{"", "eth", "eth0", strings.Repeat("a", 10), strings.Repeat("a", 11),
		strings.Repeat("f", 11), strings.Repeat("f", 12), strings.Repeat("f", 64), strings.Repeat("f", 65)}
	alphabet := "aZ09_-\n é"
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var b strings.Builder
		for range r.IntN(70) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if got, want := idOK(s), id.MatchString(s); got != want {
			t.Errorf("idOK(%q) = %v, want %v", s, got, want)
		}
		if got, want := ifPrefixOK(s), prefix.MatchString(s); got != want {
			t.Errorf("ifPrefixOK(%q) = %v, want %v", s, got, want)
		}
	}
}
