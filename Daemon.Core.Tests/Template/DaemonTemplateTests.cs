using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Template;

/// <summary>
/// <c>dotnet new daemon</c> as a user gets it: the three packages that <c>dotnet pack</c> makes
/// (Daemon.Core and Daemon.Hosting as this test run built them, Daemon.Templates) in a temp feed,
/// packed once for the whole fixture; the template package installed into a hive of its own (the
/// user's templates stay untouched), instantiated with no option in a temp folder whose
/// nuget.config names that feed, built once, and then run and checked.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class DaemonTemplateTests
{
    private const string ProjectName = "pinger";
    private static readonly string[] _placeholders = { "DaemonTemplate", "daemon-template-program", "TemplateDaemonClass", "DAEMON_CORE_VERSION", "DAEMON_NET_VERSION" };

    private ExampleDaemon _daemon = null!;
    private string _project = null!;
    private string _version = null!;
    private string _feed = null!;
    private string _hive = null!;
    private TimeSpan _setUpTime;

    private static string TemplateFolder => Path.Combine(TestEnvironment.RepositoryRoot, "templates", "content", "daemon");

    [OneTimeSetUp]
    public void PackInstallCreateAndBuild()
    {
        var watch = Stopwatch.StartNew();
        _daemon = new ExampleDaemon("", "template", takesPort: false);
        string folder = _daemon.Folder;
        _feed = Path.Combine(folder, "feed");
        _hive = Path.Combine(folder, "hive");
        _project = Path.Combine(folder, ProjectName);
        _version = DaemonCoreVersion();

        // The libraries as this test run built them (--no-build), in the one version of the repository.
        string configuration = typeof(DaemonTemplateTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        foreach (string library in new[] { "Daemon.Core", "Daemon.Hosting" })
        {
            Dotnet(folder, "pack", Path.Combine(TestEnvironment.RepositoryRoot, library, library + ".csproj"), "--no-build", "-c", configuration,
                "-o", _feed, "--disable-build-servers", "-nologo");
        }

        Dotnet(folder, "pack", Path.Combine(TestEnvironment.RepositoryRoot, "templates", "Daemon.Templates.csproj"), "-o", _feed, "--disable-build-servers", "-nologo");

        // Daemon.* from the temp feed only (never a copy of the same version cached on this machine),
        // everything else from the packages already on this machine.
        File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local-build" value="{_feed}" />
                <add key="machine-cache" value="{MachinePackagesFolder()}" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="local-build">
                  <package pattern="Daemon.*" />
                </packageSource>
                <packageSource key="machine-cache">
                  <package pattern="*" />
                </packageSource>
              </packageSourceMapping>
            </configuration>
            """);

        Dotnet(folder, "new", "install", TemplatePackage, "--debug:custom-hive", _hive);
        NewDaemon(ProjectName);
        Dotnet(_project, "build", "--disable-build-servers", "-nologo", "-c", "Debug");

        _daemon.ProgramPath = Path.Combine(_project, "bin", "Debug", "net10.0", ProjectName);
        _setUpTime = watch.Elapsed;
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        TestContext.Progress.WriteLine($"template: pack, install, instantiate and build took {_setUpTime.TotalSeconds:0.0} s");
        _daemon?.Dispose();
    }

    private string TemplatePackage => Path.Combine(_feed, $"Daemon.Templates.{_version}.nupkg");

    /// <summary><c>dotnet new daemon -n NAME</c> and the given options, from the installed package, in the fixture's folder.</summary>
    private string NewDaemon(string name, params string[] options)
    {
        string project = Path.Combine(_daemon.Folder, name);
        Dotnet(_daemon.Folder, new[] { "new", "daemon", "-n", name, "-o", project, "--debug:custom-hive", _hive }.Concat(options).ToArray());
        return project;
    }

    [Test]
    public void PackedTemplate_DefaultsToTheOneVersionOfThisRepository()
    {
        // Directory.Build.props states the version once; the pack stamps it into template.json.
        using ZipArchive package = ZipFile.OpenRead(TemplatePackage);
        using var reader = new StreamReader(package.GetEntry("content/daemon/.template.config/template.json")!.Open());
        string packed = reader.ReadToEnd();

        string source = File.ReadAllText(Path.Combine(TemplateFolder, ".template.config", "template.json"));
        Assert.That(packed, Is.EqualTo(source.Replace("DAEMON_NET_VERSION", _version, StringComparison.Ordinal)), "the source, stamped, and nothing else changed");
        using JsonDocument template = JsonDocument.Parse(packed);
        Assert.That(template.RootElement.GetProperty("symbols").GetProperty("DaemonCoreVersion").GetProperty("defaultValue").GetString(), Is.EqualTo(_version));
        Assert.That(template.RootElement.GetProperty("shortName").GetString(), Is.EqualTo("daemon"));
    }

    [Test]
    public void PackedTemplate_HoldsEveryFileOfTheTemplate_BesideItsTemplateJson()
    {
        // dotnet new takes the files of the folder that holds .template.config: a file anywhere else
        // is never written (a package with content/content/daemon/ made empty projects).
        string[] source = Directory.GetFiles(TemplateFolder, "*", SearchOption.AllDirectories)
            .Select(f => "content/daemon/" + Path.GetRelativePath(TemplateFolder, f))
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .ToArray();
        using ZipArchive package = ZipFile.OpenRead(TemplatePackage);
        string[] packed = package.Entries.Select(e => e.FullName).Where(f => f.StartsWith("content/", StringComparison.Ordinal)).ToArray();
        Assert.That(packed, Is.EquivalentTo(source));
    }

    [Test]
    public void NewProject_HasItsFiles_WithTheNameInPlaceOfEveryPlaceholder()
    {
        string[] files = Directory.GetFiles(_project, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(_project, f))
            .ToArray();
        Assert.That(files, Is.EquivalentTo(new[]
        {
            "pinger.csproj", "Program.cs", "PingerDaemon.cs", "README.md",
            "deploy/pinger.service", "deploy/pinger-forking.service", "deploy/pinger-upgrade.service", "deploy/pinger.logrotate",
        }));

        foreach (string file in files)
        {
            string text = File.ReadAllText(Path.Combine(_project, file));
            Assert.That(_placeholders.Where(p => text.Contains(p, StringComparison.Ordinal)), Is.Empty, file);
        }

        string program = File.ReadAllText(Path.Combine(_project, "Program.cs"));
        Assert.That(program.Split('\n').Count(line => line.Contains("return", StringComparison.Ordinal)), Is.EqualTo(1));
        Assert.That(program, Does.Contain("return new PingerDaemon().Main(args);"));
        Assert.That(File.ReadAllText(Path.Combine(_project, "PingerDaemon.cs")), Does.Contain("public sealed class PingerDaemon : DaemonBase"));
        Assert.That(File.ReadAllText(Path.Combine(_project, "pinger.csproj")), Does.Contain($"<PackageReference Include=\"Daemon.Core\" Version=\"{_version}\" />"), "the package's default");
    }

    [Test]
    public void NewProject_KeepsTheProjectsName_AsTheProgramsName_CaseAndAll()
    {
        // Users type bin/Debug/net10.0/MyService: that must be the program, and what its README says.
        string project = NewDaemon("MyService");

        Assert.That(File.ReadAllText(Path.Combine(project, "MyService.csproj")), Does.Contain("<AssemblyName>MyService</AssemblyName>"));
        Assert.That(File.ReadAllText(Path.Combine(project, "README.md")), Does.Contain("bin/Debug/net10.0/MyService start --pid-file /tmp/MyService.pid"));
        Assert.That(File.ReadAllText(Path.Combine(project, "deploy", "MyService.service")), Does.Contain("ExecStart=/opt/MyService/MyService run"));
        Assert.That(File.ReadAllText(Path.Combine(project, "Program.cs")), Does.Contain("return new MyServiceDaemon().Main(args);"));
    }

    [Test]
    public void Package_CarriesTheNativeDetachStage_ForLinuxX64AndArm64()
    {
        using ZipArchive package = ZipFile.OpenRead(Directory.GetFiles(_feed, "Daemon.Core.*.nupkg").Single(f => !f.EndsWith(".symbols.nupkg", StringComparison.Ordinal)));
        foreach ((string rid, System.Runtime.InteropServices.Architecture architecture) in new[] { ("linux-x64", System.Runtime.InteropServices.Architecture.X64), ("linux-arm64", System.Runtime.InteropServices.Architecture.Arm64) })
        {
            ZipArchiveEntry? entry = package.GetEntry($"runtimes/{rid}/native/daemon-net-stage");
            Assert.That(entry, Is.Not.Null, rid);
            using var bytes = new MemoryStream();
            using (Stream stream = entry!.Open())
            {
                stream.CopyTo(bytes);
            }

            byte[] stage = bytes.ToArray();
            Assert.That(NativeStageTests.Elf.Machine(stage), Is.EqualTo(NativeStageTests.Elf.MachineOf(architecture)), rid);
            Assert.That(NativeStageTests.Elf.IsStaticPie(stage), Is.True, rid);
            Assert.That(System.Text.Encoding.ASCII.GetString(stage), Does.Contain(NativeStageTests.SourceId), rid);
        }
    }

    [Test]
    public void NewProject_BuiltForTheJit_StartsThroughThePackagesNativeStage()
    {
        // From the package's runtimes/RID/native, as the host's native search folders name it.
        string stage = Path.Combine(_project, "bin", "Debug", "net10.0", "runtimes", NativeRid, "native", "daemon-net-stage");
        Assert.That(File.Exists(stage), Is.True, stage);
        Assert.That(Syscall.access(stage, AccessModes.X_OK), Is.EqualTo(0), "executable");

        List<NativeStageTests.Exec> execs = NativeStageTests.TracedStartAndStop(_daemon);

        Assert.That(execs.Where(e => e.Ok).Select(e => e.Path), Is.EqualTo(new[] { _daemon.ProgramPath, stage, _daemon.ProgramPath }), string.Join("; ", execs));
    }

    [Test]
    public void NewProject_PublishesOneNativeExecutable_ByDefault_AndItRunsAsADaemon()
    {
        Assert.That(File.ReadAllText(Path.Combine(_project, "pinger.csproj")), Does.Contain("<PublishAot>true</PublishAot>"));
        string output = Path.Combine(_daemon.Folder, "published");
        Dotnet(TimeSpan.FromMinutes(15), _project, "publish", "-c", "Release", "-r", NativeRid, "-o", output, "--disable-build-servers", "-nologo");

        string program = Path.Combine(output, ProjectName);
        byte[] header = File.ReadAllBytes(program).AsSpan(0, 20).ToArray();
        Assert.That(header.AsSpan(0, 4).ToArray(), Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }), "a native executable");
        Assert.That(File.Exists(Path.Combine(output, ProjectName + ".dll")), Is.False, "no managed assembly beside it: Native AOT, not an apphost");
        Assert.That(File.Exists(Path.Combine(output, "daemon-net-stage")), Is.False, "the detach stage is linked in");

        var published = new ExampleDaemon(program, "template-aot", takesPort: false);
        try
        {
            string socketPath = Path.Combine(published.Folder, "status.sock");
            int pid = published.Start("--status-socket", socketPath);
            Assert.That(ExampleDaemon.FirstLine(published.Run("status").Output), Is.EqualTo($"running (pid {pid})"));
            Assert.That(AskStatus(socketPath), Does.EndWith($"(pid {pid})\n"));
            CommandResult stopped = published.Run("stop");
            Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
            Assert.That(Syscall.lstat(socketPath, out _), Is.EqualTo(-1), "the daemon stopped for good removes the socket file it created");
        }
        finally
        {
            published.Dispose();
        }
    }

    [Test]
    public void NewProject_WithAotFalse_PublishesForTheJit()
    {
        string project = NewDaemon("jitted", "--aot", "false");

        string csproj = File.ReadAllText(Path.Combine(project, "jitted.csproj"));
        Assert.That(csproj, Does.Not.Contain("PublishAot"));
        Assert.That(csproj, Does.Not.Contain("#if"), "no template directive left");
        Assert.That(File.ReadAllText(Path.Combine(_project, "pinger.csproj")), Does.Not.Contain("#if"));
    }

    /// <summary>This machine's portable runtime identifier.</summary>
    private static string NativeRid => "linux-" + System.Runtime.InteropServices.RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();

    [Test]
    public void NewProject_Starts_ReportsStatus_AndStops()
    {
        string socketPath = Path.Combine(_daemon.Folder, "status.sock");
        int pid = _daemon.StartSayingSo("--interval", "0.2", "--status-socket", socketPath);
        _daemon.AssertRunning(pid);
        Assert.That(_daemon.WaitForLog($"{ProjectName}[{pid}]: round 2"), Is.True, _daemon.Log);

        _daemon.StopSayingSo(pid);
        Assert.That(_daemon.Log, Does.Contain("done after").And.Contain($"{ProjectName}[{pid}]: stopped (exit 0)"));
        Assert.That(Syscall.lstat(socketPath, out _), Is.EqualTo(-1), "the daemon stopped for good removes the socket file it created");

        CommandResult after = _daemon.Run("status");
        Assert.That(after.ExitCode, Is.EqualTo(3), after.ToString());
    }

    [Test]
    public void NewProject_RunAsNobody_ItsSocketFileInARootFolder_IsRemovedByStop()
    {
        TestEnvironment.RequireRoot();
        TestEnvironment.RequireReachableByOthers(_daemon.Folder);
        string socketPath = Path.Combine(_daemon.Folder, "status.sock");
        CommandResult started = _daemon.Run("start", "--interval", "0.2", "--status-socket", socketPath, "--user", "nobody");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();
        Assert.That(_daemon.WaitForLog($"{ProjectName}[{pid}]: running as user nobody"), Is.True, _daemon.Log);
        Assert.That(AskStatus(socketPath), Does.EndWith($"(pid {pid})\n"));

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.Output.Trim(), Is.EqualTo($"stopped (pid {pid})"), stopped.ToString());
        Assert.That(Syscall.lstat(socketPath, out _), Is.EqualTo(-1), "the daemon (nobody) could not unlink it in root's folder; stop (root) did, once nobody accepted on it");
    }

    [Test]
    public void NewProject_RestartHandsItsStatusSocketOver()
    {
        string socketPath = Path.Combine(_daemon.Folder, "status.sock");
        CommandResult started = _daemon.Run("start", "--interval", "0.2", "--status-socket", socketPath);
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int first = _daemon.ReadPid();
        Assert.That(_daemon.WaitForLog($"{ProjectName}[{first}]: listening on {socketPath}"), Is.True, _daemon.Log);
        Assert.That(AskStatus(socketPath), Does.EndWith($"(pid {first})\n"));

        CommandResult restarted = _daemon.Run("restart", "--interval", "0.2", "--status-socket", socketPath);
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int next = _daemon.ReadPid();
        Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {next}; pid {first} handed over and exited)\n"), "a worker's rounds never overlap");
        Assert.That(Arguments(next), Is.EqualTo(StartArguments("--interval", "0.2", "--status-socket", socketPath)), "ps shows a started daemon, not 'restart'");
        Assert.That(ExampleDaemon.WaitUntilGone(first, TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(AskStatus(socketPath), Does.EndWith($"(pid {next})\n"), "the same socket, answered by the new generation");
        Assert.That(_daemon.Log, Does.Contain($"{ProjectName}[{next}]: listening on {socketPath} (inherited as 'status')"));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
        Assert.That(Mono.Unix.Native.Syscall.lstat(socketPath, out _), Is.EqualTo(-1), "the last generation removes the socket file");
    }

    [Test]
    public void NewProject_RestartWithoutTheStatusSocket_RemovesItsFile_AsNoGenerationServesIt()
    {
        string socketPath = Path.Combine(_daemon.Folder, "status.sock");
        int first = _daemon.Start("--interval", "0.2", "--status-socket", socketPath);

        CommandResult restarted = _daemon.Run("restart", "--interval", "0.2");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int next = _daemon.ReadPid();
        Assert.That(ExampleDaemon.WaitUntilGone(first, TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(_daemon.Log, Does.Contain($"{ProjectName}[{next}]: warning: inherited listener 'status' on {socketPath} was not claimed; closing it"));
        Assert.That(Syscall.lstat(socketPath, out _), Is.EqualTo(-1), "the file of a socket nobody accepts on any more");
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void NewProject_RestartWithoutListeners_StopsThenStarts_ADaemonWhoseCommandLineSaysStart()
    {
        int first = _daemon.Start("--interval", "0.2");

        CommandResult restarted = _daemon.Run("restart", "--interval", "0.2");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int next = _daemon.ReadPid();
        Assert.That(next, Is.Not.EqualTo(first));
        Assert.That(Arguments(next), Is.EqualTo(StartArguments("--interval", "0.2")), "ps shows a started daemon, not 'restart'");
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
    }

    /// <summary>The arguments that <c>start</c> with <paramref name="extra"/> runs the daemon with, in <see cref="ExampleDaemon.Run"/>'s order.</summary>
    private string[] StartArguments(params string[] extra) => new[] { "start" }.Concat(_daemon.CommonOptions).Concat(extra).ToArray();

    /// <summary>The arguments of <paramref name="pid"/>'s command line, as ps shows them, after the program.</summary>
    private static string[] Arguments(int pid)
    {
        string[] argv = File.ReadAllText($"/proc/{pid}/cmdline").TrimEnd('\0').Split('\0');
        return argv.AsSpan(1).ToArray();
    }

    /// <summary>What the status socket answers, read by another process (a client the daemon does not know).</summary>
    private string AskStatus(string socketPath)
    {
        const string client = "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nsys.stdout.write(s.makefile().read())";
        CommandResult asked = _daemon.Exec(new[] { "-c", client, socketPath }, null, "python3");
        Assert.That(asked.ExitCode, Is.EqualTo(0), asked.ToString());
        return asked.Output;
    }

    [Test]
    public void NewProject_UnitsAndLogrotateSnippet_RunTheDaemonsCommands()
    {
        string deploy = Path.Combine(_project, "deploy");
        string notify = File.ReadAllText(Path.Combine(deploy, "pinger.service"));
        string forking = File.ReadAllText(Path.Combine(deploy, "pinger-forking.service"));
        string upgrade = File.ReadAllText(Path.Combine(deploy, "pinger-upgrade.service"));
        string logrotate = File.ReadAllText(Path.Combine(deploy, "pinger.logrotate"));
        Assert.Multiple(() =>
        {
            Assert.That(notify, Does.Contain("Type=notify").And.Contain("ExecStart=/opt/pinger/pinger run"));
            Assert.That(upgrade, Does.Contain("NotifyAccess=all").And.Contain("ExecStart=/opt/pinger/pinger run --pid-file /run/pinger/pinger.pid")
                .And.Contain("ExecReload=/opt/pinger/pinger restart --pid-file /run/pinger/pinger.pid").And.Contain("RuntimeDirectory=pinger\n"));
            Assert.That(forking, Does.Contain("Type=forking").And.Contain("PIDFile=/run/pinger.pid").And.Contain("ExecStart=/opt/pinger/pinger start --pid-file /run/pinger.pid"));
            Assert.That(logrotate, Does.StartWith("#").And.Contain("/var/log/pinger.log {").And.Contain("    create ").And.Contain("/opt/pinger/pinger reload --pid-file /run/pinger.pid"));
            Assert.That(Regex.IsMatch(logrotate, @"postrotate\s+\S*pinger reload.*\s+endscript"), Is.True, logrotate);
        });

        string analyze = TestEnvironment.RequireTool("/usr/bin/systemd-analyze");

        // verify checks that ExecStart exists: point it at the program that was just built.
        var units = new List<string>();
        foreach (string unit in new[] { "pinger.service", "pinger-forking.service", "pinger-upgrade.service" })
        {
            string copy = Path.Combine(_daemon.Folder, unit);
            File.WriteAllText(copy, File.ReadAllText(Path.Combine(deploy, unit)).Replace("/opt/pinger/pinger", _daemon.ProgramPath, StringComparison.Ordinal));
            units.Add(copy);
        }

        CommandResult verified = _daemon.Exec(new[] { "verify" }.Concat(units), null, analyze);
        Assert.That(verified.ExitCode, Is.EqualTo(0), verified.ToString());
        Assert.That(verified.Output + verified.Error, Does.Not.Contain("pinger"), "no warning about the units");
    }

    private static string DaemonCoreVersion()
    {
        string props = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "Directory.Build.props"));
        return Regex.Match(props, "<Version>([^<]+)</Version>").Groups[1].Value;
    }

    private static string MachinePackagesFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages
            ? packages
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>
    /// Runs the dotnet CLI, restoring into a packages folder of the test's own; its temp files
    /// (NuGetScratch, MSBuild's folders) go to a temp folder of the test's own too, and with it.
    /// </summary>
    private void Dotnet(string workingDirectory, params string[] args) => Dotnet(TimeSpan.FromSeconds(180), workingDirectory, args);

    private void Dotnet(TimeSpan timeout, string workingDirectory, params string[] args)
    {
        string temp = Directory.CreateDirectory(Path.Combine(_daemon.Folder, "tmp")).FullName;
        var environment = new Dictionary<string, string?>
        {
            ["TMPDIR"] = temp,
            ["NUGET_PACKAGES"] = Path.Combine(_daemon.Folder, "packages"),
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
            ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
            ["MSBUILDDISABLENODEREUSE"] = "1",
        };
        // The dotnet host that runs these tests, when the SDK says which; else the one on PATH.
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { } host && File.Exists(host) ? host : "dotnet";
        CommandResult result = _daemon.Exec(args, environment, dotnet, workingDirectory, timeout);
        Assert.That(result.ExitCode, Is.EqualTo(0), $"dotnet {string.Join(' ', args)}: {result}");
    }
}
