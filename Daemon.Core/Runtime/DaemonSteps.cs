using System;
using Daemon.Logging;
using Daemon.PidFiles;
using Daemon.Security;

namespace Daemon.Runtime;

/// <summary>The real steps.</summary>
internal sealed class DaemonSteps : IDaemonSteps
{
    public static DaemonSteps Instance { get; } = new();

    public void HandleSignals(Action<string> stop, Action reload)
    {
        if (OperatingSystem.IsLinux())
        {
            Signals.DaemonSignals.ResetInherited();
        }

        Signals.DaemonSignals.Register(stop, reload);
    }

    public Identity? ResolveIdentity(string? user, string? group) => Identity.Resolve(user, group);

    public void SetFileCreationMask(int umask)
    {
        if (OperatingSystem.IsLinux())
        {
            Interop.Posix.SetFileCreationMask((uint)umask & 0b111_111_111);
        }
    }

    public void ChangeWorkingDirectory(string path)
    {
        if (Interop.Posix.ChangeDirectory(path, out int errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot change working directory to {Files.PathText.Quote(path)}", errno);
        }
    }

    public void RedirectStreams(DaemonLog log, string path) => log.Open(path, "starting");

    public IPidFile? LockPidFile(string path, out int holder) => LockedPidFile.Acquire(path, out holder);

    public Handover.IPredecessor ConnectToPredecessor(string path, Handover.ListenerSet into, uint? runsAs, System.TimeSpan timeout) => Handover.Predecessor.Connect(path, into, runsAs, timeout);

    public IPidFile TakeOverPidFile(string path, int pid) => LockedPidFile.TakeOver(path, pid);

    public void DropPrivileges(DaemonLog log, Identity identity)
    {
        // The pid file stays root's: a daemon user able to rewrite it could aim root's kill anywhere.
        log.GiveTo(identity.Uid, identity.Gid);
        identity.Apply();
    }
}
