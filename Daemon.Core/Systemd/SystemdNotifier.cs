using System;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Daemon.Systemd;

/// <summary>
/// The sd_notify(3) protocol, spoken when systemd (or another supervisor) sets NOTIFY_SOCKET:
/// one datagram per state change on a Unix socket, "@" naming the abstract namespace.
/// Without NOTIFY_SOCKET it does nothing and costs nothing.
/// </summary>
internal sealed class SystemdNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endPoint;

    /// <summary>Reads NOTIFY_SOCKET; for testing, takes the value it would find there.</summary>
    internal SystemdNotifier(string? notifySocket)
    {
        if (string.IsNullOrEmpty(notifySocket) || (notifySocket[0] != '/' && notifySocket[0] != '@'))
        {
            return;
        }

        // An abstract socket's name starts with a NUL byte; systemd writes it as "@".
        _endPoint = new UnixDomainSocketEndPoint(notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    public static SystemdNotifier FromEnvironment() => new(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));

    /// <summary>READY=1 with the main pid: the startup hook returned.</summary>
    public void Ready() => Send($"READY=1\nMAINPID={Environment.ProcessId}");

    /// <summary>RELOADING=1 with the monotonic time, which Type=notify-reload waits for.</summary>
    public void Reloading() => Send($"RELOADING=1\nMONOTONIC_USEC={MonotonicMicroseconds()}");

    /// <summary>WATCHDOG=1: the daemon is alive and healthy.</summary>
    public void Watchdog() => Send("WATCHDOG=1");

    /// <summary>STOPPING=1: the daemon is shutting down.</summary>
    public void Stopping() => Send("STOPPING=1");

    /// <summary>STATUS=...: a line systemctl status shows.</summary>
    public void Status(string text) => Send($"STATUS={text.Replace('\n', ' ')}");

    public void Dispose() => _socket?.Dispose();

    private void Send(string state)
    {
        if (_socket is null)
        {
            return;
        }

        try
        {
            _ = _socket.SendTo(Encoding.UTF8.GetBytes(state), SocketFlags.None, _endPoint!);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // A supervisor that went away must not take the daemon down with it, nor a watchdog
            // ping that was already under way when the daemon closed its notifier at exit.
        }
    }

    // Stopwatch reads CLOCK_MONOTONIC on Linux, the clock systemd compares against.
    private static string MonotonicMicroseconds() =>
        (Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000)).ToString(CultureInfo.InvariantCulture);
}
