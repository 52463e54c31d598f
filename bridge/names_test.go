package bridge

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestNameRules checks the hand-written name checks against the regular
// expressions they replace, on edge cases and on random strings.
func TestNameRules(t *testing.T) {
	name := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)
	ifname := regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)
	cases := []string{"", "a", "_a", ".a", "-a", "a_b.c-d", "Z9", "a b", "a\n", "é", "a/b",
		strings.Repeat("a", 15), strings.Repeat("a", 16), strings.Repeat("a", 64), strings.Repeat("a", 65)}
	alphabet := "aZ09_.-/ \n\x00é"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range r.IntN(70) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if got, want := nameOK(s), name.MatchString(s); got != want {
			t.Errorf("nameOK(%q) = %v, want %v", s, got, want)
		}
		if got, want := ifnameOK(s), ifname.MatchString(s); got != want {
			t.Errorf("ifnameOK(%q) = %v, want %v", s, got, want)
		}
	}
}
