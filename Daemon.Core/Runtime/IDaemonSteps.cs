using System;
using Daemon.Logging;
using Daemon.PidFiles;
using Daemon.Security;

namespace Daemon.Runtime;

/// <summary>
/// What the daemon asks of the operating system on its way up, one member per step: the seam
/// through which a unit test checks their order, as python-daemon's tests check its <c>open()</c>.
/// </summary>
internal interface IDaemonSteps
{
    /// <summary>Undoes inherited "ignore" dispositions and blocked signals, then handles stop and reload signals until the process ends.</summary>
    void HandleSignals(Action<string> stop, Action reload);

    /// <summary>Resolves <c>--user</c> and <c>--group</c> now, so an unknown name fails before anything is opened.</summary>
    Identity? ResolveIdentity(string? user, string? group);

    /// <summary>umask(2).</summary>
    void SetFileCreationMask(int umask);

    /// <summary>chdir(2), so the daemon holds no mount busy.</summary>
    void ChangeWorkingDirectory(string path);

    /// <summary>Opens the log at <paramref name="path"/> and points descriptors 1 and 2 at it.</summary>
    void RedirectStreams(DaemonLog log, string path);

    /// <summary>Creates and write-locks the pid file, empty; null and the holder when a daemon holds it.</summary>
    IPidFile? LockPidFile(string path, out int holder);

    /// <summary>Hands the log over if it may, then drops to <paramref name="identity"/> for good.</summary>
    void DropPrivileges(DaemonLog log, Identity identity);
}

/// <summary>The daemon's own pid file, held locked for its whole life.</summary>
internal interface IPidFile
{
    /// <summary>The path of the file.</summary>
    string Path { get; }

    /// <summary>Writes the pid: from now on, the file says the daemon is ready.</summary>
    void Publish(int pid);

    /// <summary>Removes the file if the path still names it, and lets the lock go.</summary>
    void Remove();
}

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

        Signals.DaemonSignals.Register(stop, reload).KeepUntilExit();
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

    public void DropPrivileges(DaemonLog log, Identity identity)
    {
        // The pid file stays root's: a daemon user able to rewrite it could aim root's kill anywhere.
        log.GiveTo(identity.Uid, identity.Gid);
        identity.Apply();
    }
}
