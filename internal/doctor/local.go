package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	if err != nil && errors.As(err, &ve) && ve.Field == "secrets_file" {
		// Reported by the secrets_file check; validate the rest here.
		err = cfg.Validate()
	} else {
		r.cfg = full
	}
	if err != nil {
		r.add("config", Fail, fmt.Sprintf("%s: %s", path, oneLine(err.Error())), "correct the keys named (the example config shows each with a comment: "+exampleConfigHint+")")
	} else {
		r.add("config", OK, path+" is valid", "")
	}
	if err := r.cfg.RequireRun(); err != nil {
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

func (r *run) checkDatabase() {
	path := filepath.Join(r.cfg.DataDir, DBFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		r.add("database", OK, path+" does not exist yet; posbridge creates it at first start", "")
		return
	}
	st, err := queue.Open(path, queue.Options{LockTimeout: 500 * time.Millisecond})
	switch {
	case err == nil:
		if err := st.Close(); err != nil {
			r.add("database", Fail, fmt.Sprintf("%s: close: %v", path, err), "check the disk")
			return
		}
		r.add("database", OK, path+" opens", "")
	case errors.Is(err, queue.ErrLocked):
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
	case errors.Is(err, queue.ErrSchema):
		r.add("database", Fail, oneLine(err.Error()), "this database was written by another posbridge version; restore the matching binary or move the file aside")
	default:
		fix := "check the file and the disk"
		if errors.Is(err, fs.ErrPermission) {
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
