package nft

import "fmt"

// ReadSet reads a set or map of our table back from the kernel: its
// definition and elements as a model Set, elements sorted as Compile sorts
// them. Addresses in interval sets come back as prefixes.
func (a *Applier) ReadSet(name string) (*Set, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ks, err := a.conn.GetSetByName(a.table, name)
	if err != nil {
		return nil, fmt.Errorf("read set %s of table ip %s: %w", name, a.table.Name, err)
	}
	s, err := modelSet(ks)
	if err != nil {
		return nil, err
	}
	kes, err := a.conn.GetSetElements(ks)
	if err != nil {
		return nil, fmt.Errorf("read elements of set %s: %w", name, err)
	}
	if s.Elements, err = decodeElements(s, kes); err != nil {
		return nil, err
	}
	sortElements(s)
	return s, nil
}

// ReadElements reads back the elements of a named set or map of our table
// as model elements (see ReadSet).
func (a *Applier) ReadElements(name string) ([]Element, error) {
	s, err := a.ReadSet(name)
	if err != nil {
		return nil, err
	}
	return s.Elements, nil
}
