package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/queue"
)

// Disk space thresholds for the data directory.
const (
	diskFailBytes = 64 << 20
	diskWarnBytes = 512 << 20
)

func (r *run) checkConfig() {
	path := r.opt.ConfigPath
	f, err := os.Open(path)
	if err != nil {
		fix := "pass --config with the right path"
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fix = "create it from the example (" + exampleConfigHint + ") or pass --config"
		case errors.Is(err, fs.ErrPermission):
			fix = "run doctor as root / Administrator, or as the service user (sudo -u posbridge posbridge doctor)"
		}
		r.add("config", Fail, fmt.Sprintf("cannot read %s: %v", path, unwrapPath(err)), fix)
		return
	}
	cfg, err := config.Parse(f)
	f.Close()
	if err != nil {
		fix := "correct the line named; unknown keys are errors (compare with the example config, " + exampleConfigHint + ")"
		if strings.Contains(err.Error(), "environment variable") {
			fix = "set them (Linux service: in " + envFileHint + ", mode 0600; Windows: the service's environment) or put the values in secrets_file"
		}
		r.add("config", Fail, fmt.Sprintf("%s: %s", path, oneLine(err.Error())), fix)
		return
	}
	r.cfg, r.loaded = cfg, true
	full, err := config.Load(path)
	r.configValid = err == nil
	var ve *config.ValidationError
	secretsUnread := false
	if err != nil && errors.As(err, &ve) && ve.Field == "secrets_file" {
		// Reported by the secrets_file check; validate the rest here.
		err, secretsUnread = cfg.Validate(), true
	} else {
		r.cfg = full
	}
	if err != nil {
		r.add("config", Fail, fmt.Sprintf("%s: %s", path, oneLine(err.Error())), "correct the keys named (the example config shows each with a comment: "+exampleConfigHint+")")
	} else {
		r.add("config", OK, path+" is valid", "")
	}
	if err := r.cfg.RequireRun(); err != nil {
		if secretsUnread {
			// What the refused file holds was not applied: asking for it
			// again would send the technician to the wrong file.
			r.add("config.complete", Fail, "posbridge run needs: "+oneLine(err.Error())+"; the secrets file was not read (see secrets_file), so what it holds is not counted",
				"fix the secrets file first, then run doctor again")
			return
		}
		r.add("config.complete", Fail, "posbridge run needs: "+oneLine(err.Error()),
			"set them in the config or the secrets file (or the POSBRIDGE_* environment variables)")
	} else {
		r.add("config.complete", OK, fmt.Sprintf("gateway account, API token and %d terminal(s) configured", len(r.cfg.Terminals)), "")
	}
}

// exampleConfigHint is where the commented example config is installed.
const exampleConfigHint = "Linux: /usr/share/doc/posbridge/posbridge.example.yaml; Windows: posbridge.example.yaml in the zip"

// unwrapPath drops *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (r *run) checkSecretsFile() {
	const name = "secrets_file"
	path := r.cfg.SecretsFile
	if path == "" {
		r.add(name, Skip, "none configured (secrets come from the config file or POSBRIDGE_* variables)", "")
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		fix := "check secrets_file in the config"
		if errors.Is(err, fs.ErrNotExist) {
			fix = fmt.Sprintf("create it (mode 0600, owned by the service user): install -m 600 -o %s /dev/null %s, then add the keys", r.userOr("posbridge"), path)
		}
		r.add(name, Fail, fmt.Sprintf("%s: %v", path, unwrapPath(err)), fix)
		return
	}
	if d, fix := secretsPermProblem(path, fi); d != "" {
		r.add(name, Fail, d, fix)
		return
	}
	if svc := r.serviceAccount(); svc != nil && !svc.can(fi, true, false) {
		r.add(name, Fail, fmt.Sprintf("%s (%s, owner %s): the service user %s cannot read it", path, fi.Mode().Perm(), ownerOf(fi), svc.name),
			fmt.Sprintf("chown %s: %s", svc.name, path))
		return
	}
	if _, err := os.ReadFile(path); err != nil {
		fix := "check the file"
		if errors.Is(err, fs.ErrPermission) {
			fix = "run doctor as root / Administrator or as the service user (sudo -u posbridge posbridge doctor)"
		}
		r.add(name, Fail, fmt.Sprintf("cannot read %s as %s: %v", path, currentUserName(), unwrapPath(err)), fix)
		return
	}
	// Load applies the file; a problem in it (unknown key) shows here.
	if _, err := config.Load(r.opt.ConfigPath); err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) && ve.Field == "secrets_file" {
			r.add(name, Fail, oneLine(ve.Error()), "correct the secrets file (keys: hesabe.access_code/secret_key/iv_key/password, api.token, diagnostics.token, mqtt.password, hitpay.api_key, payout.api_key)")
			return
		}
	}
	r.add(name, OK, fmt.Sprintf("%s: mode %s, owner %s", path, fi.Mode().Perm(), ownerOf(fi)), "")
}

// userOr names the service user, or def.
func (r *run) userOr(def string) string {
	if r.opt.ServiceUser != "" {
		return r.opt.ServiceUser
	}
	return def
}

// serviceAccount is the service user, or nil when it is not set, does not
// exist, or is the user running doctor (then real access tests suffice).
func (r *run) serviceAccount() *account {
	if r.opt.ServiceUser == "" {
		return nil
	}
	a, err := lookupAccount(r.opt.ServiceUser)
	if err != nil {
		return nil
	}
	return a
}

func (r *run) checkDataDir() {
	dir := r.cfg.DataDir
	fi, err := os.Stat(dir)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		r.add("data_dir", Fail, dir+" does not exist",
			fmt.Sprintf("create it: mkdir -p %s && chown %s: %s && chmod 750 %s (the packages do this)", dir, r.userOr("posbridge"), dir, dir))
		return
	case err != nil:
		r.add("data_dir", Fail, fmt.Sprintf("%s: %v", dir, unwrapPath(err)), "check data_dir in the config")
		return
	case !fi.IsDir():
		r.add("data_dir", Fail, dir+" is not a directory", "point data_dir at a directory")
		return
	}
	if svc := r.serviceAccount(); svc != nil && !svc.can(fi, true, true) {
		r.add("data_dir", Fail, fmt.Sprintf("%s (%s, owner %s): the service user %s cannot write it", dir, fi.Mode().Perm(), ownerOf(fi), svc.name),
			fmt.Sprintf("chown -R %s: %s", svc.name, dir))
	} else if f, err := os.CreateTemp(dir, ".doctor-*"); err != nil {
		fix := "make it writable by the service user"
		if errors.Is(err, fs.ErrPermission) {
			fix = fmt.Sprintf("chown -R %s: %s, or run doctor as root / the service user", r.userOr("posbridge"), dir)
		}
		r.add("data_dir", Fail, fmt.Sprintf("cannot write in %s: %v", dir, unwrapPath(err)), fix)
	} else {
		f.Close()
		os.Remove(f.Name())
		r.add("data_dir", OK, dir+" is writable", "")
	}
	free, err := freeBytes(dir)
	switch {
	case err != nil:
		r.add("disk", Warn, fmt.Sprintf("cannot read free space of %s: %v", dir, err), "check the file system")
	case free < diskFailBytes:
		r.add("disk", Fail, fmt.Sprintf("%s: only %d MiB free", dir, free>>20), "free disk space: the queue must commit every checkout to disk")
	case free < diskWarnBytes:
		r.add("disk", Warn, fmt.Sprintf("%s: %d MiB free", dir, free>>20), "free disk space soon (below 512 MiB)")
	default:
		r.add("disk", OK, fmt.Sprintf("%s: %d MiB free", dir, free>>20), "")
	}
}

// envFileHint is where the Linux unit reads environment variables from.
const envFileHint = "/etc/default/posbridge"

// DBFile is the database's name in data_dir.
const DBFile = "posbridge.db"

// checkDatabase opens the database as posbridge would, to see that it is
// not locked, is a posbridge queue of a version this build reads, and
// fits the accept log beside it. Opening it for real applies (and then
// removes) an accept log left by an unclean stop, so when there is one
// the check runs on a copy of the two files: doctor changes nothing.
func (r *run) checkDatabase(ctx context.Context) {
	path := filepath.Join(r.cfg.DataDir, DBFile)
	walPath := path + ".wal"
	walInfo, walErr := os.Stat(walPath)
	hasLog := walErr == nil && walInfo.Size() > 0
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if hasLog {
			r.add("database", Fail, fmt.Sprintf("the accept log %s is there but the database %s is missing: posbridge would start a new database and refuse the log", walPath, path),
				"put back the database that belongs to the log; if it was removed on purpose and its checkouts are settled elsewhere, move the .wal file away (keep it), then start posbridge")
			return
		}
		r.add("database", OK, path+" does not exist yet; posbridge creates it at first start", "")
		return
	}
	if r.damaged(ctx, path) {
		return
	}
	if !hasLog {
		st, err := queue.Open(path, queue.Options{LockTimeout: 500 * time.Millisecond, Logger: discardLogger})
		if err != nil {
			r.databaseError(path, err)
			return
		}
		if err := st.Close(); err != nil {
			r.add("database", Fail, fmt.Sprintf("%s: close: %v", path, err), "check the disk")
			return
		}
		r.add("database", OK, path+" opens", "")
		return
	}

	// An accept log: posbridge runs (and holds the lock), or it stopped
	// uncleanly. A read-only open takes a shared lock and writes nothing.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			err = fmt.Errorf("queue: database %s is %w", path, queue.ErrLocked)
		}
		r.databaseError(path, err)
		return
	}
	_ = db.Close()
	leftAlone := fmt.Sprintf("the accept log %s (%d bytes) is left from an unclean stop", walPath, walInfo.Size())
	const applyFix = "nothing to do: posbridge applies it at its next start (never delete or move the .wal file on its own)"
	copyDB, cleanup, err := r.copyDatabase(path, walPath)
	if err != nil {
		r.add("database", Warn, leftAlone+"; not checked against the database: "+err.Error(), applyFix)
		return
	}
	defer cleanup()
	st, err := queue.Open(copyDB, queue.Options{LockTimeout: 500 * time.Millisecond, Logger: discardLogger})
	if err != nil {
		// Name the real files, not the copies.
		r.databaseError(path, errors.New(strings.ReplaceAll(err.Error(), copyDB, path)), err)
		return
	}
	_ = st.Close()
	r.add("database", Warn, leftAlone+"; it fits the database (checked on a copy: both files are left as they are)", applyFix)
}

// damaged runs the store's integrity check and reads every record, read
// only and under the damage guard (a salvage's dry run), and reports a
// damaged file. It returns false when the file is whole or cannot be
// checked this way (locked, a log of another database): the open below
// reports those.
func (r *run) damaged(ctx context.Context, path string) bool {
	fix := fmt.Sprintf("stop posbridge, then posbridge salvage --config %s (it keeps the damaged file and lists the invoice numbers to look up in the Hesabe merchant panel; docs/troubleshooting.md: \"database is damaged\")", r.opt.ConfigPath)
	rep, err := queue.Salvage(ctx, path, "", queue.SalvageOptions{DryRun: true, LockTimeout: 500 * time.Millisecond, Logger: discardLogger})
	switch {
	case err != nil && errors.Is(err, queue.ErrDamaged):
		r.add("database", Fail, fmt.Sprintf("%s is damaged (no record can be read: %s)", path, oneLine(err.Error())), fix)
		return true
	case err != nil || !rep.Damaged:
		return false
	}
	copied := 0
	for _, n := range rep.Copied {
		copied += n
	}
	detail := fmt.Sprintf("%s is damaged (%d records unreadable, %d requests unreadable, %d to be changed; %d checkouts and %d requests can be copied)",
		path, len(rep.Lost), len(rep.Requests.Lost), len(rep.Resolved)+len(rep.Requests.Resolved), copied, rep.Requests.Copied)
	if rep.CheckError != "" {
		detail += ": " + oneLine(rep.CheckError)
	}
	r.add("database", Fail, detail, fix)
	return true
}

// discardLogger silences the store's notices: doctor reports its own.
var discardLogger = slog.New(slog.DiscardHandler)

// copyDatabase copies the database and its accept log into a temporary
// directory in data_dir (the same disk, which the data_dir check wrote
// to) and returns the copy's path and its removal.
func (r *run) copyDatabase(path, walPath string) (string, func(), error) {
	var need int64
	for _, p := range []string{path, walPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", nil, err
		}
		need += fi.Size()
	}
	if free, err := freeBytes(r.cfg.DataDir); err == nil && free < uint64(need)+diskFailBytes {
		return "", nil, fmt.Errorf("not enough free space for a copy (%d MiB)", need>>20)
	}
	dir, err := os.MkdirTemp(r.cfg.DataDir, ".doctor-db-*")
	if err != nil {
		return "", nil, fmt.Errorf("cannot make a copy: %w", unwrapPath(err))
	}
	cleanup := func() { os.RemoveAll(dir) }
	copyDB := filepath.Join(dir, DBFile)
	for from, to := range map[string]string{path: copyDB, walPath: copyDB + ".wal"} {
		if err := copyFile(from, to); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("cannot make a copy: %w", unwrapPath(err))
		}
	}
	return copyDB, cleanup, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// databaseError reports a database that does not open. err is what to
// print; cause (default err) is what to classify.
func (r *run) databaseError(path string, err error, cause ...error) {
	why := err
	if len(cause) > 0 {
		why = cause[0]
	}
	switch {
	case errors.Is(why, queue.ErrLocked):
		pid, comm := lockHolder(path)
		who := "another process"
		if pid > 0 {
			who = fmt.Sprintf("process %d (%s)", pid, comm)
		}
		if comm == "posbridge" || comm == "posbridge.exe" {
			r.posbridgeRunning, r.runningPID = true, pid
			r.add("database", Warn, fmt.Sprintf("%s is in use by %s: posbridge is running", path, who),
				"expected while the service runs; to check start-up too, stop it first: posbridge service stop")
			return
		}
		r.add("database", Fail, fmt.Sprintf("%s is locked by %s", path, who),
			"stop the other process (a second posbridge, a backup tool or a copy of the file being edited), then start posbridge")
	case errors.Is(why, queue.ErrAcceptLog):
		r.add("database", Fail, oneLine(err.Error())+" (posbridge will not start)",
			"if the database was replaced on purpose and the old one's checkouts are settled elsewhere, move the .wal file away (keep it), then start; otherwise put back the database that belongs to the log")
	case errors.Is(why, queue.ErrSchema):
		r.add("database", Fail, oneLine(err.Error()), "this database was written by another posbridge version; restore the matching binary or move the file aside")
	default:
		fix := "check the file and the disk"
		if errors.Is(why, fs.ErrPermission) {
			fix = fmt.Sprintf("chown %s: %s, or run doctor as root / the service user", r.userOr("posbridge"), path)
		}
		r.add("database", Fail, oneLine(err.Error()), fix)
	}
}

// checkPorts: the till API, the diagnostics endpoint and the embedded
// broker must be able to listen.
func (r *run) checkPorts() {
	c := r.cfg
	ports := []struct{ name, key, addr string }{
		{"port.api", "api.listen", c.API.Listen},
		{"port.diagnostics", "diagnostics.listen", c.Diagnostics.Listen},
	}
	if c.MQTT.Broker == "" && c.MQTT.Embedded.Enabled {
		ports = append(ports, struct{ name, key, addr string }{"port.mqtt", "mqtt.embedded.listen", c.MQTT.Embedded.Listen})
	}
	for _, p := range ports {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			ln.Close()
			r.add(p.name, OK, p.addr+" is free", "")
			continue
		}
		_, port, _ := net.SplitHostPort(p.addr)
		if r.posbridgeRunning && isAddrInUse(err) {
			r.add(p.name, Warn, fmt.Sprintf("%s is in use, probably by the running posbridge (pid %d)", p.addr, r.runningPID), "expected while the service runs")
			continue
		}
		if isAddrInUse(err) {
			r.add(p.name, Fail, p.addr+" is in use by another program",
				fmt.Sprintf("find it (Linux: ss -ltnp 'sport = :%s'; Windows: netstat -ano | findstr :%s) and stop it, or change %s", port, port, p.key))
			continue
		}
		r.add(p.name, Fail, fmt.Sprintf("cannot listen on %s: %v", p.addr, err),
			fmt.Sprintf("check %s: the address must belong to this machine", p.key))
	}
}

func isAddrInUse(err error) bool {
	return strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "Only one usage of each socket address")
}
