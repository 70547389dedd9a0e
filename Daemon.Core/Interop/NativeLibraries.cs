using System;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>
/// Binds "libc" and "MonoPosixHelper" to the right files at the first try. The runtime's own
/// probing tries some fifty names and folders for each ("libc.so" is a linker script, then
/// "liblibc.so" everywhere): measurable in a daemon that starts three processes.
/// </summary>
internal static class NativeLibraries
{
    private static int _installed;
    private static IntPtr _libc;
    private static IntPtr _helper;

    /// <summary>
    /// Why Mono.Posix's native helper could not be loaded, as one line; null when it was (or off
    /// Linux). Nearly every Mono.Posix call needs it, so a program copied without its
    /// <c>libMonoPosixHelper.so</c> must say so instead of dying at its first system call.
    /// </summary>
    public static string? HelperProblem { get; private set; }

    /// <summary>Installs the resolver for Daemon.Core and Mono.Posix, once; harmless if someone else did.</summary>
    public static void Install()
    {
        if (!OperatingSystem.IsLinux() || System.Threading.Interlocked.Exchange(ref _installed, 1) == 1)
        {
            return;
        }

        // Loaded here, not inside the resolver: a resolver runs in the middle of a P/Invoke whose
        // errno is still to be read, and its own file look-ups were seen to clobber it.
        _ = NativeLibrary.TryLoad("libc.so.6", out _libc);

        // Native AOT publishes the helper next to the executable; the JIT build finds it through
        // deps.json, which the runtime's own probing (the one DllImport would use) reads.
        string local = Path.Combine(AppContext.BaseDirectory, "libMonoPosixHelper.so");
        if ((!File.Exists(local) || !NativeLibrary.TryLoad(local, out _helper))
            && !NativeLibrary.TryLoad("MonoPosixHelper", typeof(Mono.Unix.Native.Syscall).Assembly, null, out _helper))
        {
            HelperProblem = $"cannot load libMonoPosixHelper.so, Mono.Posix's native helper: it must be in {Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)}";
        }

        TrySet(typeof(NativeLibraries).Assembly);
        TrySet(typeof(Mono.Unix.Native.Syscall).Assembly);
    }

    private static void TrySet(Assembly assembly)
    {
        try
        {
            NativeLibrary.SetDllImportResolver(assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // The application installed its own resolver: it knows best.
        }
    }

    // IntPtr.Zero falls back to the runtime's own probing.
    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) => name switch
    {
        "libc" => _libc,
        "MonoPosixHelper" => _helper,
        _ => IntPtr.Zero,
    };
}
