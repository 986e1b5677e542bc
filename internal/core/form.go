package core

// AcceptsFormBody reports whether the backend behind path declared that
// it takes application/x-www-form-urlencoded request bodies there
// (logical.Paths.FormBody). The HTTP layer decodes JSON for every other
// path.
func (c *Core) AcceptsFormBody(path string) bool {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if c.Sealed() || c.Standby() || c.mounts == nil {
		return false
	}
	m, rel := c.mounts.route(path)
	if m == nil {
		return false
	}
	special := m.backend.SpecialPaths()
	return special != nil && matchSpecial(special.FormBody, rel)
}
