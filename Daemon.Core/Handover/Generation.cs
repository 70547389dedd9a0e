using System;
using System.Collections.Generic;
using System.Threading;
using Daemon.Files;
using Daemon.Logging;
using Daemon.PidFiles;

namespace Daemon.Handover;

/// <summary>
/// One generation's side of a zero-downtime restart, from bind to the next generation: what it
/// inherited from the running daemon, taking over its pid file and committing (or failing, which
/// leaves the running one as it was), then offering its own listeners on its control channel,
/// handing them over, and giving the pid file back to itself when a successor fails.
/// </summary>
/// <remarks>
/// The runtime calls it at named points, in this order:
/// <see cref="TakeListeners"/> (a restart's new generation only), the startup hook (which claims
/// listeners through <see cref="ListenerSet"/>), <see cref="Offer"/>, <see cref="TakeOverPidFile"/>,
/// <see cref="Commit"/>, <see cref="AwaitPredecessorExit"/> (unless the daemon overlaps), ready, <see cref="Serve"/>; at a stop, <see cref="Refuse"/>. It calls
/// nothing back: a handover shows as <see cref="HandedOver"/>, a token the runtime watches.
/// </remarks>
internal sealed class Generation : IDisposable
{
    private readonly string? _pidFile;
    private readonly ListenerSet _listeners;
    private readonly DaemonLog _log;
    private readonly IHandoverSteps _steps;
    private readonly PidFileSlot _pidFileSlot;
    /// <summary>How often the wait for the predecessor's exit looks at its stop token.</summary>
    private static readonly TimeSpan ExitPoll = TimeSpan.FromMilliseconds(200);

    private readonly CancellationTokenSource _handedOver = new();
    private IPredecessor? _predecessor;
    private HandoverServer? _server;
    private volatile int _successor;
    private bool _committed;

    /// <param name="pidFile">The daemon's pid file, which names its control channel; null: no channel.</param>
    /// <param name="listeners">This generation's listeners.</param>
    /// <param name="log">The daemon's log.</param>
    /// <param name="steps">The system calls of the handover.</param>
    /// <param name="pidFileSlot">The pid file this daemon holds, which a take-back swaps.</param>
    public Generation(string? pidFile, ListenerSet listeners, DaemonLog log, IHandoverSteps steps, PidFileSlot pidFileSlot)
    {
        _pidFile = pidFile;
        _listeners = listeners;
        _log = log;
        _steps = steps;
        _pidFileSlot = pidFileSlot;
    }

    /// <summary>True for a generation that took the running daemon's listeners (a restart's new one).</summary>
    public bool IsSuccessor => _predecessor is not null || _committed;

    /// <summary>The next generation's pid once this one handed its listeners over, else 0.</summary>
    public int Successor => _successor;

    /// <summary>Cancelled once a next generation took the listeners over: this one stops accepting and drains.</summary>
    public CancellationToken HandedOver => _handedOver.Token;

    /// <summary>
    /// True when the socket files of its listeners are this generation's to remove at its end (of
    /// those a successor did not take: see <see cref="ListenerSet.RemoveSocketFiles"/>): it bound
    /// them, or its takeover was committed.
    /// </summary>
    public bool OwnsSocketFiles => _predecessor is null || _committed;

    /// <summary>Takes the running daemon's listeners (it keeps serving meanwhile).</summary>
    /// <param name="runsAs">The uid this daemon will run as (<c>--user</c>), which the running one may have.</param>
    /// <param name="timeout">The ready timeout: every wait on the channel ends by then.</param>
    /// <exception cref="DaemonException">None runs any more, or it did not hand over in time.</exception>
    public void TakeListeners(uint? runsAs, TimeSpan timeout)
    {
        _predecessor = _steps.ConnectToPredecessor(RequirePidFile(), _listeners, runsAs, timeout);
        _log.Line($"taking over from pid {_predecessor.Pid}: {_listeners.InheritedCount} listener(s) handed over");
    }

    /// <summary>
    /// Opens this generation's control channel, bound but not answering yet: bound before the pid
    /// file names this daemon, so whoever it names has a channel. The channel trusts who started
    /// the daemon: root, and its own user only when it keeps it.
    /// </summary>
    /// <param name="startedBy">The effective uid that started the daemon, before any <c>--user</c>.</param>
    /// <param name="changesUser">True when the daemon will drop to another user.</param>
    /// <param name="supervision">What the channel tells a probe when a service manager supervises this daemon; null when none does.</param>
    public void Offer(uint startedBy, bool changesUser, Func<string?>? supervision = null)
    {
        if (_pidFile is not null && OperatingSystem.IsLinux())
        {
            _server = HandoverServer.Open(_pidFile, _listeners, _log, startedBy, changesUser, OnHandedOver, TakeBackPidFile, supervision);
        }
    }

    /// <summary>
    /// Puts this generation's pid in the pid file in one rename, while the running daemon still
    /// serves: the path names the old daemon, then the new one, never neither.
    /// </summary>
    public void TakeOverPidFile() => _pidFileSlot.Hold(_steps.TakeOverPidFile(RequirePidFile(), Environment.ProcessId));

    /// <summary>
    /// Tells the running daemon that this one holds the pid file and which of its listeners it
    /// adopted: from then on it stops accepting on those, and the queue is ours. Killed meanwhile,
    /// it has left us the service. Nothing to do for a generation that took nothing over.
    /// </summary>
    /// <param name="awaitRelease">True to wait until it acted on the commit (see <see cref="IPredecessor.Commit"/>).</param>
    /// <param name="awaitExit">True when <see cref="AwaitPredecessorExit"/> follows: its handle is kept till then.</param>
    /// <exception cref="DaemonException">It did not agree (it is stopping), or did not answer in time.</exception>
    public void Commit(bool awaitRelease = false, bool awaitExit = true)
    {
        if (_committed || _predecessor is not { } predecessor)
        {
            return;
        }

        if (!predecessor.Commit(Environment.ProcessId, _listeners.Adopted, awaitRelease))
        {
            _log.Line(LogSeverity.Warning, $"pid {predecessor.Pid} exited during the handover; this daemon serves on");
        }

        // Held until it has exited (AwaitPredecessorExit), by the handle that cannot reach a stranger.
        _committed = true;
        if (!awaitExit)
        {
            predecessor.Dispose();
            _predecessor = null;
        }

        // A Unix listener this generation did not take is nobody's once the old one lets go.
        _listeners.RemoveUnclaimedSocketFiles();
    }

    /// <summary>
    /// After <see cref="Commit"/>, blocks until the previous generation has exited: it stops and
    /// drains as at a stop, and this generation's main loop begins only then, so two never run at
    /// once. Past <paramref name="stopTimeout"/> (and 2 s for the process to exit), a
    /// predecessor still there is killed with SIGKILL when <paramref name="kill"/> (<c>--force</c>),
    /// as <c>stop --force</c> would; otherwise the log says so once and the wait goes on. Nothing to
    /// do for a generation that took nothing over.
    /// </summary>
    /// <param name="stopTimeout">How long the predecessor has to stop (<c>--stop-timeout</c>).</param>
    /// <param name="kill">True to kill a predecessor that outlives it (<c>--force</c>).</param>
    /// <param name="stopping">Cancelled by a stop request, which ends the wait.</param>
    /// <exception cref="OperationCanceledException"><paramref name="stopping"/> was cancelled first.</exception>
    public void AwaitPredecessorExit(TimeSpan stopTimeout, bool kill, CancellationToken stopping)
    {
        if (!_committed || _predecessor is not { } predecessor)
        {
            return;
        }

        TimeSpan patience = stopTimeout + Launching.StageProtocol.PredecessorExitGrace;
        long late = Environment.TickCount64 + (long)patience.TotalMilliseconds;
        bool said = false;
        _log.Line($"waiting for pid {predecessor.Pid} to exit: the main loop begins once it has");
        while (!predecessor.WaitForExit(ExitPoll))
        {
            stopping.ThrowIfCancellationRequested();
            if (said || Environment.TickCount64 < late)
            {
                continue;
            }

            said = true;
            string seconds = OptionValues.ShowSeconds(patience);
            if (kill)
            {
                _log.Line(LogSeverity.Warning, $"pid {predecessor.Pid} had not exited {seconds} s after the handover: killing it (SIGKILL, --force)");
                predecessor.Kill();
            }
            else
            {
                _log.Line(LogSeverity.Warning, $"pid {predecessor.Pid} has not exited {seconds} s after the handover; the main loop still waits for it (restart --force kills it)");
            }
        }

        _log.Line($"pid {predecessor.Pid} has exited");
        predecessor.Dispose();
        _predecessor = null;
    }

    /// <summary>Answers on the control channel from now on (a restart that came early waited in its backlog).</summary>
    public void Serve() => _server?.Serve();

    /// <summary>From now on a handover is refused with <paramref name="reason"/>, and one under way is aborted.</summary>
    public void Refuse(string reason) => _server?.Refuse(reason);

    public void Dispose()
    {
        _server?.Dispose();
        _predecessor?.Dispose();
    }

    private string RequirePidFile() => _pidFile ?? throw new InvalidOperationException("a handover needs a pid file");

    private void OnHandedOver(int successor, IReadOnlyCollection<string> adopted)
    {
        _successor = successor;

        // Shared sockets from now on. Disposing a .NET Socket while another thread is in a call on
        // it (an accept, blocking or async) shuts it down to wake that call, which would stop the
        // successor's copy too; .NET spares a socket that is not close-on-exec, as one that may be
        // shared. (Its abortive close still sets SO_LINGER 0 on the shared socket: cancel a pending
        // accept before closing, as ConnectionServer and Daemon.Hosting.Web do.) What the successor
        // did not adopt stays this daemon's alone, drained as at stop.
        _listeners.MarkHandedOver(adopted);
        _handedOver.Cancel();
    }

    /// <summary>A next generation that had renamed its pid file over ours went away before it committed: ours again.</summary>
    private void TakeBackPidFile(int failed) => _pidFileSlot.Swap(current =>
    {
        if (current.IsAtItsPath)
        {
            return null;
        }

        try
        {
            IPidFile ours = _steps.TakeOverPidFile(current.Path, Environment.ProcessId);
            _log.Line(LogSeverity.Warning, $"pid file {PathText.Quote(ours.Path)} names this daemon again (pid {failed} failed)");
            return ours;
        }
        catch (DaemonException e)
        {
            _log.Line(LogSeverity.Error, $"cannot take pid file back after pid {failed} failed: {e.Message}; status will not see this daemon");
            return null;
        }
    });
}
