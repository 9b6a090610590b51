package job

// containerName is a job's container name, berth-<instance>-<job>: several berths on one
// engine never reach for the same name.
func containerName(instance, jobID string) string {
	if instance == "" {
		return "berth-" + jobID
	}
	return "berth-" + instance + "-" + jobID
}
