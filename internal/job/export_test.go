package job

// What the external tests of this package (package job_test) use of its internals.
var (
	NewID      = newID
	ToRow      = toRow
	ReadChunks = readChunks
)

// LogPath is where the job's output is saved.
func (m *Manager) LogPath(id string) string { return m.logPath(id) }
