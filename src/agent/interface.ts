/**
 * berth's D-Bus API, as data: the well-known name, the object, and the
 * introspection XML that documents every method and signal. Results are JSON
 * strings (the same objects `berth ... --json` prints), so the API stays as
 * stable as the CLI's JSON and callers need no D-Bus struct plumbing.
 */
export const BUS_NAME = 'org.berth.Manager1';
export const OBJECT_PATH = '/org/berth/Manager1';
export const INTERFACE = 'org.berth.Manager1';

/** Methods only root may call (also enforced by the bus policy units/org.berth.Manager1.conf). */
export const PRIVILEGED = new Set(['Install', 'Update', 'Rollback', 'Uninstall']);

export const INTROSPECTION = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node name="${OBJECT_PATH}">
  <interface name="${INTERFACE}">
    <!-- JSON array of installed containers (as berth list --json). -->
    <method name="List"><arg name="containers" type="s" direction="out"/></method>
    <!-- JSON status of one container (as berth status --json). -->
    <method name="Status"><arg name="name" type="s" direction="in"/><arg name="status" type="s" direction="out"/></method>
    <!-- Install IMAGE as NAME ("" = default name) with KEY=VALUE settings; root only. -->
    <method name="Install"><arg name="image" type="s" direction="in"/><arg name="name" type="s" direction="in"/><arg name="set" type="as" direction="in"/><arg name="result" type="s" direction="out"/></method>
    <!-- Update NAME (pull, other slot, proof, automatic rollback); root only. -->
    <method name="Update"><arg name="name" type="s" direction="in"/><arg name="result" type="s" direction="out"/></method>
    <!-- Switch NAME back to its other slot; root only. -->
    <method name="Rollback"><arg name="name" type="s" direction="in"/><arg name="result" type="s" direction="out"/></method>
    <!-- Uninstall NAME (idempotent, keeps data); root only. -->
    <method name="Uninstall"><arg name="name" type="s" direction="in"/><arg name="result" type="s" direction="out"/></method>
    <!-- A container was installed, updated, rolled back or uninstalled. -->
    <signal name="ContainerChanged"><arg name="name" type="s"/><arg name="event" type="s"/></signal>
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
  </interface>
  <interface name="org.freedesktop.DBus.Peer">
    <method name="Ping"/>
  </interface>
</node>
`;
