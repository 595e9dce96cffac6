package queue

// CallsPerCommit is the average number of calls the committer ran per
// transaction so far (benchmarks report it).
func CallsPerCommit(s *Store) float64 {
	n := s.batches.Load()
	if n == 0 {
		return 0
	}
	return float64(s.batched.Load()) / float64(n)
}
