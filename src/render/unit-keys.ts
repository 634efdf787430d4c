/**
 * The unit-file keys berth accepts in a system container's unit, as data
 * (like podman quadlet's key tables). The lists follow systemd.unit(5),
 * systemd.service(5), systemd.exec(5), systemd.kill(5) and
 * systemd.resource-control(5) of systemd 252-255, deprecated spellings
 * included, since images were written for older systemd.
 *
 * A key outside the table is an error: systemd would only log "Unknown key"
 * in the journal and ignore it, so a misspelt `Requries=` or `ExecStartpre=`
 * would silently change what the image's author meant. `X-` keys and `X-`
 * sections, which systemd ignores by design, are always accepted.
 */

export type UnitSectionName = 'Unit' | 'Service' | 'Install';

const conditions = [
  'Architecture', 'Firmware', 'Virtualization', 'Host', 'KernelCommandLine', 'KernelVersion', 'Credential', 'Environment',
  'Security', 'Capability', 'ACPower', 'NeedsUpdate', 'FirstBoot', 'PathExists', 'PathExistsGlob', 'PathIsDirectory',
  'PathIsSymbolicLink', 'PathIsMountPoint', 'PathIsReadWrite', 'PathIsEncrypted', 'DirectoryNotEmpty', 'FileNotEmpty',
  'FileIsExecutable', 'User', 'Group', 'ControlGroupController', 'Memory', 'CPUs', 'CPUFeature', 'OSRelease',
  'MemoryPressure', 'CPUPressure', 'IOPressure',
];

const unitKeys = [
  'Description', 'Documentation', 'Wants', 'Requires', 'Requisite', 'BindsTo', 'PartOf', 'Upholds', 'Conflicts', 'Before', 'After',
  'OnFailure', 'OnSuccess', 'PropagatesReloadTo', 'ReloadPropagatedFrom', 'PropagatesStopTo', 'StopPropagatedFrom',
  'JoinsNamespaceOf', 'RequiresMountsFor', 'OnFailureJobMode', 'OnFailureIsolate', 'IgnoreOnIsolate', 'StopWhenUnneeded',
  'RefuseManualStart', 'RefuseManualStop', 'AllowIsolate', 'DefaultDependencies', 'CollectMode', 'FailureAction',
  'SuccessAction', 'FailureActionExitStatus', 'SuccessActionExitStatus', 'JobTimeoutSec', 'JobRunningTimeoutSec',
  'JobTimeoutAction', 'JobTimeoutRebootArgument', 'StartLimitIntervalSec', 'StartLimitInterval', 'StartLimitBurst',
  'StartLimitAction', 'RebootArgument', 'SourcePath', 'BindTo', 'RequiresOverridable', 'RequisiteOverridable',
  ...conditions.map((c) => `Condition${c}`),
  ...conditions.map((c) => `Assert${c}`),
];

const serviceKeys = [
  // systemd.service(5)
  'Type', 'ExitType', 'RemainAfterExit', 'GuessMainPID', 'PIDFile', 'BusName', 'ExecStart', 'ExecStartPre', 'ExecStartPost',
  'ExecCondition', 'ExecReload', 'ExecStop', 'ExecStopPost', 'RestartSec', 'RestartSteps', 'RestartMaxDelaySec',
  'TimeoutStartSec', 'TimeoutStopSec', 'TimeoutAbortSec', 'TimeoutSec', 'TimeoutStartFailureMode', 'TimeoutStopFailureMode',
  'RuntimeMaxSec', 'RuntimeRandomizedExtraSec', 'WatchdogSec', 'Restart', 'RestartMode', 'SuccessExitStatus',
  'RestartPreventExitStatus', 'RestartForceExitStatus', 'RootDirectoryStartOnly', 'NonBlocking', 'NotifyAccess', 'Sockets',
  'FileDescriptorStoreMax', 'FileDescriptorStorePreserve', 'USBFunctionDescriptors', 'USBFunctionStrings', 'OOMPolicy',
  'OpenFile', 'ReloadSignal', 'StartLimitInterval', 'StartLimitIntervalSec', 'StartLimitBurst', 'StartLimitAction',
  'FailureAction', 'SuccessAction', 'RebootArgument', 'PermissionsStartOnly',
  // systemd.exec(5)
  'WorkingDirectory', 'RootDirectory', 'RootImage', 'RootImageOptions', 'RootHash', 'RootHashSignature', 'RootVerity',
  'MountAPIVFS', 'ProtectProc', 'ProcSubset', 'BindPaths', 'BindReadOnlyPaths', 'MountImages', 'ExtensionImages',
  'ExtensionDirectories', 'User', 'Group', 'DynamicUser', 'SupplementaryGroups', 'PAMName', 'CapabilityBoundingSet',
  'AmbientCapabilities', 'NoNewPrivileges', 'SecureBits', 'SELinuxContext', 'AppArmorProfile', 'SmackProcessLabel',
  'LimitCPU', 'LimitFSIZE', 'LimitDATA', 'LimitSTACK', 'LimitCORE', 'LimitRSS', 'LimitNOFILE', 'LimitAS', 'LimitNPROC',
  'LimitMEMLOCK', 'LimitLOCKS', 'LimitSIGPENDING', 'LimitMSGQUEUE', 'LimitNICE', 'LimitRTPRIO', 'LimitRTTIME', 'UMask',
  'CoredumpFilter', 'KeyringMode', 'OOMScoreAdjust', 'TimerSlackNSec', 'Personality', 'IgnoreSIGPIPE', 'Nice',
  'CPUSchedulingPolicy', 'CPUSchedulingPriority', 'CPUSchedulingResetOnFork', 'CPUAffinity', 'NUMAPolicy', 'NUMAMask',
  'IOSchedulingClass', 'IOSchedulingPriority', 'ProtectSystem', 'ProtectHome', 'RuntimeDirectory', 'StateDirectory',
  'CacheDirectory', 'LogsDirectory', 'ConfigurationDirectory', 'RuntimeDirectoryMode', 'StateDirectoryMode',
  'CacheDirectoryMode', 'LogsDirectoryMode', 'ConfigurationDirectoryMode', 'RuntimeDirectoryPreserve', 'TimeoutCleanSec',
  'ReadWritePaths', 'ReadOnlyPaths', 'InaccessiblePaths', 'ExecPaths', 'NoExecPaths', 'ReadWriteDirectories',
  'ReadOnlyDirectories', 'InaccessibleDirectories', 'TemporaryFileSystem', 'PrivateTmp', 'PrivateDevices', 'PrivateNetwork',
  'NetworkNamespacePath', 'PrivateIPC', 'IPCNamespacePath', 'PrivateUsers', 'ProtectHostname', 'ProtectClock',
  'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups', 'RestrictAddressFamilies',
  'RestrictFileSystems', 'RestrictNamespaces', 'LockPersonality', 'MemoryDenyWriteExecute', 'RestrictRealtime',
  'RestrictSUIDSGID', 'RemoveIPC', 'PrivateMounts', 'MountFlags', 'SystemCallFilter', 'SystemCallErrorNumber',
  'SystemCallArchitectures', 'SystemCallLog', 'Environment', 'EnvironmentFile', 'PassEnvironment', 'UnsetEnvironment',
  'StandardInput', 'StandardOutput', 'StandardError', 'StandardInputText', 'StandardInputData', 'LogLevelMax',
  'LogExtraFields', 'LogRateLimitIntervalSec', 'LogRateLimitBurst', 'LogFilterPatterns', 'LogNamespace', 'SyslogIdentifier',
  'SyslogFacility', 'SyslogLevel', 'SyslogLevelPrefix', 'TTYPath', 'TTYReset', 'TTYVHangup', 'TTYRows', 'TTYColumns',
  'TTYVTDisallocate', 'LoadCredential', 'LoadCredentialEncrypted', 'ImportCredential', 'SetCredential',
  'SetCredentialEncrypted', 'UtmpIdentifier', 'UtmpMode', 'SetLoginEnvironment',
  // systemd.kill(5)
  'KillMode', 'KillSignal', 'RestartKillSignal', 'SendSIGHUP', 'SendSIGKILL', 'FinalKillSignal', 'WatchdogSignal',
  // systemd.resource-control(5), deprecated cgroup v1 spellings included
  'Slice', 'CPUAccounting', 'CPUWeight', 'StartupCPUWeight', 'CPUQuota', 'CPUQuotaPeriodSec', 'AllowedCPUs',
  'StartupAllowedCPUs', 'AllowedMemoryNodes', 'StartupAllowedMemoryNodes', 'MemoryAccounting', 'MemoryMin', 'MemoryLow',
  'MemoryHigh', 'MemoryMax', 'MemorySwapMax', 'MemoryZSwapMax', 'TasksAccounting', 'TasksMax', 'IOAccounting', 'IOWeight',
  'StartupIOWeight', 'IODeviceWeight', 'IOReadBandwidthMax', 'IOWriteBandwidthMax', 'IOReadIOPSMax', 'IOWriteIOPSMax',
  'IODeviceLatencyTargetSec', 'IPAccounting', 'IPAddressAllow', 'IPAddressDeny', 'IPIngressFilterPath', 'IPEgressFilterPath',
  'BPFProgram', 'SocketBindAllow', 'SocketBindDeny', 'RestrictNetworkInterfaces', 'DeviceAllow', 'DevicePolicy', 'Delegate',
  'DisableControllers', 'ManagedOOMSwap', 'ManagedOOMMemoryPressure', 'ManagedOOMMemoryPressureLimit',
  'ManagedOOMPreference', 'CPUShares', 'StartupCPUShares', 'MemoryLimit', 'BlockIOAccounting', 'BlockIOWeight',
  'StartupBlockIOWeight', 'BlockIODeviceWeight', 'BlockIOReadBandwidth', 'BlockIOWriteBandwidth', 'NetClass',
];

const installKeys = ['Alias', 'WantedBy', 'RequiredBy', 'UpheldBy', 'Also', 'DefaultInstance'];

export const UNIT_KEYS: Readonly<Record<UnitSectionName, ReadonlySet<string>>> = {
  Unit: new Set(unitKeys),
  Service: new Set(serviceKeys),
  Install: new Set(installKeys),
};

/**
 * Keys systemd knows but a system container's unit may not use, with why.
 * The unit runs the OCI runtime, which needs root on the host's root
 * filesystem; enabling it must not touch units berth does not own.
 */
export const REFUSED_KEYS: Readonly<Record<UnitSectionName, Readonly<Record<string, string>>>> = {
  Unit: {},
  Service: {
    User: 'the OCI runtime must run as root; set process.user in config.json instead',
    Group: 'the OCI runtime must run as root; set process.user in config.json instead',
    DynamicUser: 'the OCI runtime must run as root; set process.user in config.json instead',
    PrivateUsers: 'the OCI runtime needs the host user namespace',
    RootDirectory: 'the OCI runtime runs on the host; the container root is config.json root.path',
    RootImage: 'the OCI runtime runs on the host; the container root is config.json root.path',
  },
  Install: {
    Alias: 'another name for the unit could shadow another unit, and berth manages the container by its name',
    Also: 'enabling the container would enable units berth does not own',
    DefaultInstance: 'a system container unit is not a template unit',
  },
};

export function isKnownSection(name: string): name is UnitSectionName {
  return name === 'Unit' || name === 'Service' || name === 'Install';
}
