package oidc

import (
	"strconv"
	"testing"
)

func TestLedgerKeepsNewest(t *testing.T) {
	var l ledger
	for n := range maxIssued + 3 {
		l.add(strconv.Itoa(n))
	}
	got := l.list()
	if len(got) != maxIssued || got[0] != "3" || got[len(got)-1] != strconv.Itoa(maxIssued+2) {
		t.Fatalf("len %d, first %s, last %s", len(got), got[0], got[len(got)-1])
	}
}
