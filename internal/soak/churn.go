package soak

import (
	"context"
	"fmt"
	"time"
)

// churn disturbs every link once per Churn interval until ctx ends: the
// MQTT terminals' network goes away for a moment (they reconnect, their
// Last Wills fire), the serial terminal's pty is unplugged and a new one
// plugged in, the broker restarts (every MQTT connection drops, the
// bridge's too) and the gateway goes away for a while. The simulated
// terminals keep their payments through it all, as terminal apps do.
func (r *runner) churn(ctx context.Context) {
	t := time.NewTicker(r.o.Churn)
	defer t.Stop()
	brokerDown := min(time.Second, r.o.Churn/10)
	terminalDown := min(2*time.Second, r.o.Churn/10)
	gatewayDown := min(3*time.Second, r.o.Churn/5)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Each step gets its own bound: a stuck restart is a finding,
		// not a reason to stop churning.
		step := func(what string, f func(context.Context) error) {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := f(sctx); err != nil && ctx.Err() == nil {
				r.churnErr(fmt.Errorf("%s: %w", what, err))
			}
		}
		step("cut the MQTT terminals off", func(c context.Context) error {
			r.terminalNet.down()
			sleep(c, terminalDown)
			return r.terminalNet.up()
		})
		if r.stack.SerialPort != "" {
			step("replug the serial terminal", r.stack.ReplugSerial)
		}
		step("restart the broker", func(c context.Context) error {
			if err := r.closeBroker(c); err != nil {
				return err
			}
			sleep(c, brokerDown)
			return r.openBroker(c)
		})
		step("gateway outage", func(c context.Context) error {
			r.gateway.down()
			sleep(c, gatewayDown)
			return r.gateway.up()
		})
		r.mu.Lock()
		r.rep.Churns++
		r.mu.Unlock()
	}
}

func (r *runner) churnErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rep.ChurnErrors) < 10 {
		r.rep.ChurnErrors = append(r.rep.ChurnErrors, err.Error())
	}
}

func (r *runner) closeBroker(ctx context.Context) error {
	if !r.brokerUp {
		return nil
	}
	r.brokerUp = false
	if err := r.broker.Close(ctx); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

// openBroker starts the broker on its port, retrying for a moment while
// the port is still held by the last run's sockets.
func (r *runner) openBroker(ctx context.Context) error {
	if r.brokerUp {
		return nil
	}
	var err error
	for range 20 {
		if err = r.broker.Open(ctx); err == nil {
			r.brokerUp = true
			return nil
		}
		if !sleep(ctx, 250*time.Millisecond) {
			break
		}
	}
	return fmt.Errorf("soak: broker: %w", err)
}
