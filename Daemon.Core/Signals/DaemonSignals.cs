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
internal static class DaemonSignals
{
    // Registrations kept for the life of the process: once disposed (or finalized), a late stop
    // signal would take its default action and kill a daemon that is exiting cleanly.
    private static readonly List<PosixSignalRegistration> _kept = new();

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

    /// <summary>Registers the handlers, kept until the process ends: <paramref name="stop"/> gets the signal's name.</summary>
    public static void Register(Action<string> stop, Action reload)
    {
        Add(PosixSignal.SIGTERM, () => stop("SIGTERM"));
        Add(PosixSignal.SIGINT, () => stop("SIGINT"));
        Add(PosixSignal.SIGQUIT, () => stop("SIGQUIT"));
        Add(PosixSignal.SIGHUP, reload);
    }

    private static void Add(PosixSignal signal, Action action)
    {
        try
        {
            PosixSignalRegistration registration = PosixSignalRegistration.Create(signal, context =>
            {
                // Cancel the runtime's default (terminate): the daemon stops in order instead.
                context.Cancel = true;
                action();
            });
            lock (_kept)
            {
                _kept.Add(registration);
            }
        }
        catch (TypeInitializationException e) when (e.InnerException is IOException inner)
        {
            // The runtime's signal pipe could not be made (EMFILE under a tiny ulimit -n): say that, not "a type initializer".
            throw new DaemonException($"cannot handle {signal}: {inner.Message}", e);
        }
    }
}
