using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using Daemon.Interop;

namespace Daemon.Signals;

/// <summary>
/// The daemon's signals, through .NET's <see cref="PosixSignalRegistration"/>: SIGTERM, SIGINT and
/// SIGQUIT request a stop, SIGHUP a reload.
/// </summary>
internal sealed class DaemonSignals : IDisposable
{
    // Registrations kept for the life of the process: once disposed (or finalized), a late stop
    // signal would take its default action and kill a daemon that is exiting cleanly.
    private static readonly List<DaemonSignals> _kept = new();

    private readonly List<PosixSignalRegistration> _registrations = new();

    private DaemonSignals()
    {
    }

    /// <summary>
    /// Undoes what the process inherited: a blocked signal mask, and "ignore" dispositions (a
    /// launcher under nohup ignores SIGHUP), which would otherwise silently win over the handlers.
    /// </summary>
    public static void ResetInherited()
    {
        Posix.UnblockAllSignals();
        foreach (int signal in Launching.StageProtocol.ResetSignals)
        {
            if (Posix.IsIgnored(signal))
            {
                Posix.SetDefaultAction(signal);
            }
        }
    }

    /// <summary>Registers the handlers: <paramref name="stop"/> gets the signal's name.</summary>
    public static DaemonSignals Register(Action<string> stop, Action reload)
    {
        var signals = new DaemonSignals();
        signals.Add(PosixSignal.SIGTERM, () => stop("SIGTERM"));
        signals.Add(PosixSignal.SIGINT, () => stop("SIGINT"));
        signals.Add(PosixSignal.SIGQUIT, () => stop("SIGQUIT"));
        signals.Add(PosixSignal.SIGHUP, reload);
        return signals;
    }

    /// <summary>Keeps the handlers registered until the process ends.</summary>
    public void KeepUntilExit()
    {
        lock (_kept)
        {
            _kept.Add(this);
        }
    }

    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }

        _registrations.Clear();
    }

    private void Add(PosixSignal signal, Action action)
    {
        try
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                // Cancel the runtime's default (terminate): the daemon stops in order instead.
                context.Cancel = true;
                action();
            }));
        }
        catch (TypeInitializationException e) when (e.InnerException is IOException inner)
        {
            // The runtime's signal pipe could not be made (EMFILE under a tiny ulimit -n): say that, not "a type initializer".
            throw new DaemonException($"cannot handle {signal}: {inner.Message}", e);
        }
    }
}
