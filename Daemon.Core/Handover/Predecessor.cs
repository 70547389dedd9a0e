using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Sockets;
using System.Threading;
using Daemon.Interop;
using Daemon.PidFiles;
using Daemon.Processes;

namespace Daemon.Handover;

/// <summary>
/// The next generation's end of a zero-downtime restart: it finds the running daemon's control
/// channel, checks that the peer is the daemon the pid file names, and receives its listeners.
/// Every wait ends by the deadline it is given (the ready timeout).
/// </summary>
internal sealed class Predecessor : IPredecessor
{
    private static readonly TimeSpan _exitSeen = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan _release = TimeSpan.FromSeconds(10);
    private readonly Socket _connection;
    private readonly IProcessHandle? _process;
    private readonly TimeSpan _timeout;

    private Predecessor(Socket connection, int pid, IProcessHandle? process, TimeSpan timeout)
    {
        _connection = connection;
        _process = process;
        _timeout = timeout;
        Pid = pid;
    }

    /// <summary>The running daemon's pid.</summary>
    public int Pid { get; }

    /// <summary>
    /// Connects to the daemon that holds <paramref name="pidFile"/> and takes its listeners into
    /// <paramref name="into"/>. The peer must be the
    /// process the kernel names as the pid file's lock holder, running as root, as this process's
    /// user, or as <paramref name="runsAs"/>. A daemon busy with another handover is asked again,
    /// and a daemon that handed over meanwhile is followed to its successor, until
    /// <paramref name="timeout"/>.
    /// </summary>
    /// <param name="pidFile">The pid file.</param>
    /// <param name="into">Where the listeners go.</param>
    /// <param name="runsAs">The user this generation will run as (<c>--user</c>), if any.</param>
    /// <param name="timeout">How long every wait may take, together.</param>
    /// <param name="pidFiles">For testing: what the pid file says; the real store otherwise.</param>
    /// <exception cref="DaemonException">
    /// No daemon runs any more (a stop came first), or it does not hand over in time.
    /// </exception>
    public static Predecessor Connect(string pidFile, ListenerSet into, uint? runsAs, TimeSpan timeout, IPidFileStore? pidFiles = null)
    {
        pidFiles ??= PidFileStore.Instance;
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        string seconds = OptionValues.ShowSeconds(timeout);
        while (true)
        {
            PidFileState state = pidFiles.Inspect(pidFile);
            if (state.Kind == PidFileKind.Starting && Environment.TickCount64 < deadline)
            {
                // Another restart's generation took over and is not ready yet: ask it once it is.
                Thread.Sleep(20);
                continue;
            }

            if (!state.NamesItsHolder)
            {
                // restart saw it running a moment ago: a stop came first, and wins.
                throw new DaemonException(state.Kind == PidFileKind.Starting
                    ? $"pid {state.Holder}, the generation another restart started, was still not ready after {seconds} s; nothing new was started"
                    : "the daemon to take over from is no longer running; nothing new was started");
            }

            int holder = state.Holder;
            Socket? connection;
            try
            {
                connection = ControlChannel.Connect(pidFile, holder, deadline);
            }
            catch (TimeoutException)
            {
                throw new DaemonException($"pid {holder} did not answer on its control socket within {seconds} s");
            }

            if (connection is null)
            {
                if (pidFiles.Inspect(pidFile) is { NamesItsHolder: true } again && again.Holder != holder)
                {
                    continue;   // it handed over meanwhile: ask its successor
                }

                throw new DaemonException($"pid {holder} has no control socket: it cannot hand its listeners over");
            }

            Predecessor? predecessor = Ask(connection, holder, into, runsAs, deadline, timeout);
            if (predecessor is not null)
            {
                return predecessor;
            }

            // BUSY: another restart is handing over; its outcome decides whom to ask next.
            Thread.Sleep(10);
        }
    }

    /// <summary>One request on a connected channel: the predecessor, or null when it said BUSY.</summary>
    private static Predecessor? Ask(Socket connection, int holder, ListenerSet into, uint? runsAs, long deadline, TimeSpan timeout)
    {
        IProcessHandle? process = null;
        try
        {
            int fd = (int)connection.Handle;
            if (Posix.PeerCredentials(fd, out int peer, out uint uid, out int errno) < 0)
            {
                throw DaemonException.FromErrno("cannot read the running daemon's credentials", errno);
            }

            if (uid != 0 && uid != Posix.GetEffectiveUid() && uid != runsAs)
            {
                throw new DaemonException($"the running daemon (pid {peer}) runs as uid {uid}, which is neither root, nor this user, nor --user's");
            }

            // Held from here: whether it exited, should it go quiet, is then a fact, not a guess.
            process = ProcessTable.Instance.Open(peer);
            // The running daemon waits for our commit that long: our startup hook runs meanwhile.
            long wait = Math.Max(1, deadline - Environment.TickCount64) + (long)(HandoverProtocol.CommitGrace + timeout).TotalMilliseconds;
            if (!HandoverProtocol.TrySend(connection, HandoverProtocol.Handover, wait.ToString(CultureInfo.InvariantCulture)))
            {
                throw new DaemonException($"pid {peer} closed its control socket");
            }

            HandoverProtocol.WaitReadable(connection, deadline);
            byte[] buffer = new byte[16 * 1024];
            long n = Posix.ReceiveWithDescriptors(fd, buffer, HandoverProtocol.MaxListeners, out int[] fds, out errno);
            if (n <= 0)
            {
                CloseAll(fds);
                throw n < 0 ? DaemonException.FromErrno("cannot receive the listeners", errno) : new DaemonException($"pid {peer} closed the control socket");
            }

            (string kind, string argument) = HandoverProtocol.Parse(buffer.AsSpan(0, (int)n));
            if (kind == HandoverProtocol.Busy && fds.Length == 0)
            {
                process?.Dispose();
                connection.Dispose();
                return null;
            }

            string[] names = argument.Length == 0 ? [] : argument.Split('\n');
            if (kind != HandoverProtocol.Listeners || names.Length != fds.Length)
            {
                CloseAll(fds);
                throw new DaemonException(kind is HandoverProtocol.Refused or HandoverProtocol.Abort ? $"pid {peer} refused the handover: {argument}" : $"pid {peer} answered '{kind}'");
            }

            // Each must be a listening socket: .NET wraps any descriptor in a Socket without a word.
            int notListening = Array.FindIndex(fds, fd => !Posix.IsListeningSocket(fd));
            if (notListening >= 0)
            {
                CloseAll(fds);
                throw new DaemonException($"pid {peer} handed over '{names[notListening]}', which is not a listening socket");
            }

            for (int i = 0; i < fds.Length; i++)
            {
                into.Inherit(names[i], new Socket(new SafeSocketHandle(fds[i], ownsHandle: true)));
            }

            return new Predecessor(connection, peer, process, timeout);
        }
        catch (TimeoutException)
        {
            process?.Dispose();
            connection.Dispose();
            throw new DaemonException($"pid {holder} did not answer on its control socket within {OptionValues.ShowSeconds(timeout)} s");
        }
        catch (SocketException e)
        {
            process?.Dispose();
            connection.Dispose();
            throw new DaemonException($"cannot reach the running daemon's control socket: {e.Message}", e);
        }
        catch
        {
            process?.Dispose();
            connection.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public bool Commit(int pid, IReadOnlyCollection<string> adopted, bool awaitRelease = false)
    {
        (string kind, string argument) answer;
        try
        {
            // Read even when the send failed: a daemon stopped meanwhile said ABORT before it went.
            _ = HandoverProtocol.TrySend(_connection, HandoverProtocol.Committed, string.Join('\n', [pid.ToString(CultureInfo.InvariantCulture), .. adopted]));
            answer = HandoverProtocol.Receive(_connection, Environment.TickCount64 + (long)_timeout.TotalMilliseconds);
        }
        catch (TimeoutException)
        {
            throw new DaemonException($"pid {Pid} did not answer during the handover (is it stopped?); it keeps its listeners");
        }

        if (answer.kind == HandoverProtocol.Ok)
        {
            // Our confirmation is what makes it stop accepting; if it is lost, it serves on.
            if (HandoverProtocol.TrySend(_connection, HandoverProtocol.Done) && awaitRelease)
            {
                // Committed either way: a predecessor that says nothing more has stopped or died.
                try
                {
                    _ = HandoverProtocol.Receive(_connection, Environment.TickCount64 + (long)_release.TotalMilliseconds);
                }
                catch (TimeoutException)
                {
                }
            }

            _connection.Dispose();
            return true;
        }

        if (answer.kind == HandoverProtocol.Abort)
        {
            throw new DaemonException($"pid {Pid} did not hand over: {answer.argument}");
        }

        // Gone without a word: killed in the handover window. Its listeners and the pid file are
        // ours already, so this generation is the service now, not a failed restart.
        if (_process is not null && _process.WaitForExit(_exitSeen))
        {
            _connection.Dispose();
            return false;
        }

        throw new DaemonException($"pid {Pid} closed the control socket during the handover");
    }

    /// <inheritdoc/>
    /// <remarks>Without a handle it had exited when this generation connected: true at once.</remarks>
    public bool WaitForExit(TimeSpan timeout) => _process is null || _process.WaitForExit(timeout);

    /// <inheritdoc/>
    public void Kill() => _ = _process?.Signal(Signal.SIGKILL);

    public void Dispose()
    {
        _connection.Dispose();
        _process?.Dispose();
    }

    /// <summary>
    /// What the daemon holding <paramref name="pidFile"/> (pid <paramref name="holder"/>) says of a
    /// handover, waiting at most <paramref name="timeout"/>: how many listeners it would hand over,
    /// or why it cannot.
    /// </summary>
    public static HandoverProbe Probe(string pidFile, int holder, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            HandoverProbe? probe = ProbeOnce(pidFile, holder, deadline);
            if (probe is not null)
            {
                return probe.Value;
            }

            // BUSY: more restarts at once than it serves conversations; ask again.
            Thread.Sleep(10);
        }
    }

    private static HandoverProbe? ProbeOnce(string pidFile, int holder, long deadline)
    {
        Socket? connection;
        try
        {
            connection = ControlChannel.Connect(pidFile, holder, deadline);
        }
        catch (TimeoutException)
        {
            return new HandoverProbe(HandoverProbeResult.NoAnswer, 0);
        }

        if (connection is null)
        {
            return new HandoverProbe(HandoverProbeResult.NoChannel, 0);
        }

        using (connection)
        {
            try
            {
                if (!HandoverProtocol.TrySend(connection, HandoverProtocol.Probe))
                {
                    return new HandoverProbe(HandoverProbeResult.NoChannel, 0);
                }

                (string kind, string argument) = HandoverProtocol.Receive(connection, deadline);
                string[] parts = argument.Split(' ');
                if (kind == HandoverProtocol.Busy)
                {
                    return Environment.TickCount64 < deadline ? null : new HandoverProbe(HandoverProbeResult.NoAnswer, 0);
                }

                if (kind != HandoverProtocol.Ok || parts.Length is < 2 or > 3 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count))
                {
                    return new HandoverProbe(HandoverProbeResult.NoChannel, 0);
                }

                long? watchdog = parts.Length == 3 && parts[2].StartsWith(HandoverProtocol.Supervised, StringComparison.Ordinal)
                    && long.TryParse(parts[2].AsSpan(HandoverProtocol.Supervised.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long usec) ? usec : null;
                return new HandoverProbe(HandoverProbeResult.Answers, count, watchdog);
            }
            catch (TimeoutException)
            {
                return new HandoverProbe(HandoverProbeResult.NoAnswer, 0);
            }
            catch (SocketException)
            {
                return new HandoverProbe(HandoverProbeResult.NoChannel, 0);
            }
        }
    }

    private static void CloseAll(int[] fds)
    {
        foreach (int fd in fds)
        {
            Posix.Close(fd);
        }
    }
}

/// <summary>What a probe of the running daemon's control channel found.</summary>
internal enum HandoverProbeResult
{
    /// <summary>It answered: it hands over <see cref="HandoverProbe.Listeners"/> listeners.</summary>
    Answers,

    /// <summary>It has no channel (an older version, or it could not open one).</summary>
    NoChannel,

    /// <summary>It has a channel but did not answer in time: stopped (SIGSTOP) or hung.</summary>
    NoAnswer,
}

/// <summary>
/// A probe's result, how many listeners the daemon would hand over, and, when a service manager
/// supervises it (<c>run</c> under systemd), its watchdog interval in microseconds (0: none); null
/// when none does.
/// </summary>
internal readonly record struct HandoverProbe(HandoverProbeResult Result, int Listeners, long? SupervisedWatchdogUsec = null)
{
    /// <summary>True when a service manager supervises the running daemon.</summary>
    public bool Supervised => SupervisedWatchdogUsec is not null;
}
