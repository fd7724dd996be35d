# Sourced by the demo, the integration tests and the benchmarks:
#   private_bus DIR [POLICY]
# writes DIR/bus.conf and starts a dbus-daemon of its own on DIR/bus.sock,
# with POLICY (the project's packaging/org.bwq1.conf) included when given.
# Sets BUS_ADDR and BUS_PID; returns non-zero if the daemon did not start.
private_bus() {
	local dir=$1 policy=${2:-}
	BUS_ADDR="unix:path=$dir/bus.sock"
	{
		cat <<BUSCONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>bwq-private</type>
  <listen>$BUS_ADDR</listen>
  <auth>EXTERNAL</auth>
  <limit name="max_connections_per_user">4096</limit>
  <limit name="max_completed_connections">4096</limit>
  <limit name="max_incomplete_connections">4096</limit>
  <limit name="max_replies_per_connection">8192</limit>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
BUSCONF
		[ -n "$policy" ] && echo "  <include>$policy</include>"
		echo "</busconfig>"
	} > "$dir/bus.conf"
	dbus-daemon --config-file="$dir/bus.conf" --fork --print-pid > "$dir/bus.pid" || return 1
	BUS_PID=$(cat "$dir/bus.pid")
	local n=100
	while [ $n -gt 0 ] && [ ! -S "$dir/bus.sock" ]; do sleep 0.05; n=$((n - 1)); done
	[ -S "$dir/bus.sock" ] || return 1
	chmod 777 "$dir/bus.sock"
}
