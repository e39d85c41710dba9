package inventory

import (
	"errors"
	"fmt"
)

// ErrEmpty is returned when nothing is left.
var ErrEmpty = errors.New("empty")

// Stock counts units by SKU.
type Stock struct {
	counts map[string]int
}

// Take removes n units of sku.
func (s *Stock) Take(sku string, n int) error {
	if s.counts[sku] < n {
		return ErrEmpty
	}
	s.counts[sku] -= n
	return nil
}

func Report(s *Stock) string {
	return fmt.Sprintf("%d skus", len(s.counts))
}
