using System;
using Daemon.Logging;
using Daemon.PidFiles;
using Daemon.Security;

namespace Daemon.Runtime;

/// <summary>
/// What the daemon asks of the operating system on its way up, one member per step: the seam
/// through which a unit test checks their order, as python-daemon's tests check its <c>open()</c>.
/// </summary>
internal interface IDaemonSteps : Handover.IHandoverSteps
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
