// What the manual pages say beyond the command definitions: per command, the
// prose of DESCRIPTION, more EXAMPLES, FILES and SEE ALSO. The synopsis,
// options, defaults, choices and the commands' own examples come from the
// yargs definitions (src/cli/commands.ts); gen-man.mjs puts both together.
// Paragraphs are plain text; `code` is set in bold, *word* in italics.

export const environment = [
  ['BERTH_ROOT', 'berth\'s state directory, when --root is not given (default /var/lib/berth; the package\'s wrapper sets it from root= in /etc/berth/berth.conf).'],
  ['BERTH_SHARED_STORE', 'A shared store (what berth publish writes), mounted read-only: install, update and apply run the images it holds and approves from it, fetching no blob (the trust policy still decides). The wrapper sets it from shared-store= in /etc/berth/berth.conf.'],
  ['BERTH_SHARED_STORE_FALLBACK', 'pull (default) or refuse: what install, update and apply do when the shared store is missing, hung or lacks the image. The wrapper sets it from shared-store-fallback= in /etc/berth/berth.conf.'],
  ['BERTH_MIN_RATE', 'The slowest registry transfer berth waits for, BYTES/SECONDS (a read averaging less over that window fails with exit status 4); 0 turns the floor off. The wrapper sets it from min-rate= in /etc/berth/berth.conf.'],
  ['BERTH_REGISTRIES_CONF', 'The registries.conf to read instead of /etc/containers/registries.conf (short names, mirrors, blocked registries).'],
  ['REGISTRY_AUTH_FILE', 'A containers-auth.json(5) file with registry credentials, read before $XDG_RUNTIME_DIR/containers/auth.json (or /run/containers/UID/auth.json), $XDG_CONFIG_HOME/containers/auth.json and $DOCKER_CONFIG/config.json (~/.docker/config.json).'],
  ['DBUS_SYSTEM_BUS_ADDRESS', 'The system bus berth talks to systemd on (default unix:path=/var/run/dbus/system_bus_socket).'],
  ['NO_COLOR, TERM', 'NO_COLOR set, or TERM=dumb, turns colour off; TERM=dumb also turns off the progress lines redrawn in place.'],
  ['COSIGN_PASSWORD', 'The password of a cosign private key (berth sign --sigstore-key, berth trust keygen) when --passphrase-file is not given; set, even empty, it is used instead of asking on the terminal. The same variable cosign reads.'],
  ['COLUMNS', 'The width help is wrapped to when standard output is not a terminal (default 80).'],
];

const STATE = ['/var/lib/berth', 'berth\'s state (or $BERTH_ROOT): the image store, the installed containers (containers/NAME.0 and NAME.1, the two slots, and the NAME link to the live one), interrupted-operation records and the lock.'];
const CONF = ['/etc/berth/berth.conf', 'Package defaults read by the berth wrapper: root=, min-rate=, shared-store= and shared-store-fallback= (see ENVIRONMENT).'];
const POLICY = ['/etc/containers/policy.json', 'The trust policy: which images are accepted, and whose signatures they need (containers-policy.json(5)).'];
const REGD = ['/etc/containers/registries.d/', 'Where each registry\'s look-aside signature store is (containers-registries.d(5)).'];
const REGCONF = ['/etc/containers/registries.conf', 'Short-name search, mirrors and blocked registries (containers-registries.conf(5)).'];
const AUTH = ['/run/containers/UID/auth.json', 'Registry credentials, as skopeo login and podman login write them (see REGISTRY_AUTH_FILE).'];
const UNITS = ['/etc/systemd/system/NAME.service', 'The unit berth renders for a container, and /etc/tmpfiles.d/NAME.conf for the paths it needs.'];
const PLAN = ['/etc/berth/plan.yaml', 'The plan berth-apply.service applies on first boot.'];
const IMAGE_FILES = [STATE, POLICY, REGD, REGCONF, AUTH];

/** Every page's FILES when a command has none of its own. */
export const defaultFiles = [STATE, CONF];

export const pages = {
  '': {
    description: [
      'berth installs the services a host needs before anything else runs (etcd, flannel, a container runtime, an agent) from signed, read-only OCI images, and hands them to systemd, without a container daemon. It pulls the image and checks it against the trust policy, stores it deduplicated, checks it out read-only, renders an OCI config.json and a systemd unit, and drives systemd over D-Bus: the container is then an ordinary service (`systemctl status NAME`, `journalctl -u NAME`).',
      'Each command has its own page, berth-COMMAND(8). Progress goes to standard error (redrawn in place on a terminal, periodic lines otherwise), results to standard output; --json prints results as JSON.',
    ],
    files: [STATE, CONF, POLICY, REGD, REGCONF, UNITS, PLAN],
    examples: [
      ['berth install docker://registry.example.com/system/etcd:3.4', 'Install etcd and start etcd-3.4.service.'],
      ['berth list', 'The installed containers, their images and states.'],
      ['berth update --all', 'Update every container to its newest image, rolling back one that fails.'],
    ],
  },
  install: {
    description: [
      'Pulls IMAGE (unless --pull says otherwise) under the trust policy, checks it out read-only into a new slot, renders its config.json, unit and tmpfiles, enables the unit and starts it. The image can carry a template (the atomic system-container convention: manifest.json, config.json.template, service.template, tmpfiles.template); --set fills its values, which are recorded and reused by every update.',
      'A readiness probe (--ready-cmd, --ready-http, --ready-tcp, or an image label) makes the unit active only once the service answers, so units ordered after it wait for it. A start that fails, or a probe that never passes, undoes the install (exit status 7).',
    ],
    files: [...IMAGE_FILES, UNITS],
  },
  update: {
    description: [
      'Pulls the newest image for a container (its recorded source, or --rebase IMAGE), installs it into the other slot, switches the unit over and checks it (the unit starts, the readiness probe and --health-cmd pass); if it fails, the previous slot is put back. berth-auto-update.timer runs `berth update --all --auto` for the containers installed with --auto-update.',
    ],
    files: [...IMAGE_FILES, UNITS],
  },
  apply: {
    description: [
      'Makes the host match a plan (YAML): installs what is missing, updates what changed, and with --prune removes the containers berth installed that the plan no longer names, in dependency order. It is idempotent: applying the same plan again changes nothing, and a retry after a partial failure does only what is left. berth-apply.service runs it once on first boot for /etc/berth/plan.yaml.',
    ],
    files: [PLAN, ...IMAGE_FILES, UNITS, ['/var/lib/berth/.plan-applied', 'Written by berth-apply.service when the plan applied; it does not run again while it exists.']],
    examples: [['berth apply /etc/berth/plan.yaml', 'Install or update what the plan lists.']],
  },
  rollback: { description: ['Switches a container back to the slot it ran before its last update, and restarts it.'], files: [STATE, UNITS] },
  uninstall: { description: ['Stops and disables the unit, and removes the unit, its tmpfiles and both slots. Data in bind-mounted host directories is kept.'], files: [STATE, UNITS] },
  list: { description: ['Lists the installed containers: name, image, slot, and the unit\'s state.'] },
  status: { description: ['Shows one container: its unit and state, both slots and their images, the values it was installed with, and the end of its journal.'] },
  logs: { description: ['Shows the container\'s journal (journalctl -u NAME.service).'] },
  pull: { description: ['Fetches an image into the store without installing it: the trust policy is checked on the manifest before anything else is read, every blob against its digest, every layer against its diff_id.'], files: IMAGE_FILES },
  save: { description: ['Writes images and their signatures into one file, an OCI image layout in a tar, for hosts without a registry (berth load). Images missing from the store are pulled first.'], files: IMAGE_FILES },
  load: { description: ['Imports a bundle written by berth save, offline: every image is checked against the trust policy under its registry name, with the signatures in the bundle, and every blob against its digest; nothing is stored unless every image is accepted.'], files: [STATE, POLICY, REGD] },
  images: { description: ['Lists the images in the store, their references and sizes.'] },
  inspect: { description: ['Shows a stored image: its manifest digest, layers, configuration and signatures.'] },
  rmi: { description: ['Removes an image reference; removing by digest removes the image. Layers are freed by berth prune.'] },
  prune: { description: ['Frees the images, layers and objects no reference and no installed container uses.'] },
  verify: { description: ['Finishes or undoes interrupted operations, re-hashes every object in the store, and checks each installed container\'s deployment against its image. Exits non-zero when something is wrong.'] },
  scan: {
    description: [
      'Scans a stored image (checked out for the scan, then removed) or, with --rootfs, an unpacked one. It reads the OS package databases (dpkg\'s status and status.d, apk\'s installed database; an rpm database is reported as not scanned), matches the packages against an offline advisory database in OSV format (--osv DIR, a directory of OSV JSON files the operator keeps current), runs the scanner hooks (--hook CMD, each run as CMD ROOTFS; exit 0 and JSON findings on standard output, anything else fails the scan), and applies the policy: findings at or above --block-at block unless --allow names their ID or an alias.',
      'Exit status 0 approves; 10 (blocked) means the policy blocks the image, or the scan could not be completed: an invalid advisory file, a failed hook or a malformed package database never approves. --sbom writes a CycloneDX 1.5 JSON SBOM; --json prints the whole report. See docs/scanning.md for the hook contract and how severities are chosen.',
    ],
    files: [STATE],
  },
  mount: { description: ['Mounts a stored image read-only on DIR (an overlay of its layers), to look into it.'] },
  umount: { description: ['Unmounts a directory berth mount mounted.'] },
  sign: {
    description: [
      'Signs a registry image\'s manifest with an OpenPGP secret key exported from GnuPG (--key; simple signing, as skopeo and podman verify it) and writes the signature into the image\'s look-aside signature store (registries.d).',
      'With --sigstore-key instead, signs with a cosign private key (berth trust keygen, cosign generate-key-pair: ENCRYPTED SIGSTORE PRIVATE KEY, or the older ENCRYPTED COSIGN PRIVATE KEY) and adds the signature to the registry, in cosign\'s layout: a layer of the OCI manifest tagged sha256-HEX.sig next to the image, whose other signatures are kept. Signing again with the same key adds nothing. The key\'s password comes from --passphrase-file, else $COSIGN_PASSWORD, else the terminal; a wrong one fails with the code KEY_PASSWORD (exit status 2). Pushing needs write access to the repository (--creds or auth.json).',
    ],
    files: [REGD, POLICY],
  },
  trust: {
    description: [
      'Shows or changes the trust policy: for a scope (a registry, a namespace, a repository, or oci:/PATH), accept, reject, or require a signature by given keys (signedBy), and where its signatures are (--lookaside, written to registries.d). `berth trust default reject` makes every image not named by a scope rejected.',
      '`berth trust set --type sigstoreSigned --pubkeys cosign.pub SCOPE` requires cosign signatures by that key (or, keyless, certificates from --fulcio-ca for --oidc-issuer and --subject-email, with --rekor-key), and sets use-sigstore-attachments: true for the scope in registries.d, without which signatures in the registry are not read. `berth trust keygen [PREFIX]` writes a cosign key pair, PREFIX.key (ECDSA P-256, encrypted with scrypt and NaCl secretbox as cosign does, mode 0600) and PREFIX.pub; it never overwrites a file.',
    ],
    files: [POLICY, REGD],
  },
  agent: {
    description: ['Serves berth\'s operations on the system bus as org.berth.Manager1, for management tools; only root may change state (the bus policy /usr/share/dbus-1/system.d/org.berth.Manager1.conf). berth-agent.service runs it.'],
    files: [STATE, ['/usr/share/dbus-1/system.d/org.berth.Manager1.conf', 'Who may call the agent.']],
  },
  publish: {
    description: [
      'The publisher of a shared store: on one host (the only one that mounts the share read-write) it watches registry repositories, by polling their tag lists and by docker-distribution\'s notifications, and publishes each new image once: the publisher\'s trust policy, the pull, a hard-linked checkout into the share, a scan (package inventory, SBOM, OSV advisories, hooks), a decision, and for approved images a signature by the publisher\'s key in the share\'s look-aside store. Hosts with shared-store= in berth.conf run images from the share read-only; a host whose policy requires the publisher\'s key accepts only approved images, from the share or from the registry.',
      '`berth publish run` is the service (berth-publisher.service); `berth publish add IMAGE` publishes one image now; `berth publish status` lists every image on the share with its decision and findings; `berth publish approve` and `berth publish block` decide by hand (block removes the approval signature and moves the tag back to the previous approved digest). See docs/publisher.md.',
    ],
    files: [
      ['/etc/berth/publisher.conf', 'The publisher\'s configuration: share=, repository=, poll-interval=, listen=, token-file=, key=, the scan policy (block-at=, allow=, osv-dir=, scan-hook=), keep= and grace= (retention).'],
      ['SHARE/', 'The shared store: berth-share.json, images/ALG-HEX/ (rootfs/, manifest.json, config.json, image.json, sbom.cdx.json, scan.json), refs/REGISTRY/REPO/TAG, sigstore/, decisions/, retired/.'],
      POLICY,
      REGD,
    ],
  },
  'ready-check': { description: ['Waits until a container answers its readiness probe, or the probe\'s timeout passes (exit status 7). Rendered units run it as ExecStartPost=; it is not meant to be run by hand.'] },
};

export const seeAlso = ['systemctl(1)', 'journalctl(1)', 'systemd.service(5)', 'containers-policy.json(5)', 'containers-registries.d(5)', 'containers-registries.conf(5)', 'containers-auth.json(5)', 'skopeo(1)'];
