package main

import (
	"fmt"
	"slices"
	"testing"
)

func TestHoldersOfPlacesEachSessionOnCopiesOfTheMembers(t *testing.T) {
	names := nodeNames(16)
	var ids []string
	for i := range 500 {
		ids = append(ids, fmt.Sprintf("session-%d", i))
	}
	survivors := make([]int, 15) // the last node killed
	for i := range survivors {
		survivors[i] = i
	}
	for i, hs := range holdersOf(2, names, survivors, ids) {
		if len(hs) != 2 || hs[0] == hs[1] {
			t.Fatalf("session %d: holders %v, want two different nodes", i, hs)
		}
		for _, h := range hs {
			if !slices.Contains(survivors, h) {
				t.Fatalf("session %d: holder %d is not a survivor", i, h)
			}
		}
	}
	for i, hs := range holdersOf(0, names, survivors, ids) {
		if !slices.Equal(hs, survivors) {
			t.Fatalf("full replication, session %d: holders %v, want every survivor", i, hs)
		}
	}
}

func TestCheckHoldersRefusesAPlacementOtherThanTheBenchs(t *testing.T) {
	names := nodeNames(4)
	ids := []string{"x", "y"}
	all := []int{0, 1, 2, 3}
	var told [][]string
	for _, hs := range holdersOf(2, names, all, ids) {
		told = append(told, []string{names[hs[0]], names[hs[1]]})
	}
	if err := checkHolders(2, names, ids, told); err != nil {
		t.Fatalf("the bench's own placement refused: %v", err)
	}
	told[1] = []string{told[1][1], told[1][0]}
	if err := checkHolders(2, names, ids, told); err == nil {
		t.Fatal("holders in another order accepted")
	}
}
