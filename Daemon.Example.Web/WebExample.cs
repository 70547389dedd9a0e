using System;
using System.Globalization;
using System.Net;
using Daemon.Hosting.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Daemon.Example.Web;

/// <summary>
/// An ASP.NET Core minimal API (<c>GET /</c> answers 200) as a daemon: the app is written as any
/// other, with <see cref="WebApplication.CreateSlimBuilder(string[])"/> (Native AOT ready), and
/// <see cref="WebDaemon"/> puts Kestrel's endpoint on the daemon's listeners, so <c>restart</c>
/// hands it over and fails no request.
/// </summary>
public sealed class WebExample : WebDaemon
{
    /// <summary>Creates the daemon.</summary>
    public WebExample()
        : base("Daemon.Example.Web")
    {
    }

    /// <summary>The TCP port on 127.0.0.1 (<c>--port</c>) when no <c>--urls</c> is given. Default: 8080.</summary>
    public int Port { get; set; } = 8080;

    /// <inheritdoc/>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        base.ConfigureOptions(options);
        options.Add("--port", "N", "TCP port to serve HTTP on, on 127.0.0.1, unless --urls says otherwise", v => Port = OptionValues.Port(v), () => Port.ToString(CultureInfo.InvariantCulture));
    }

    /// <inheritdoc/>
    protected override WebApplication CreateApplication(string[] args)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(args);
        if (Urls is null)
        {
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, Port));
        }

        WebApplication app = builder.Build();
        app.MapGet("/", () => $"hello from pid {Environment.ProcessId}\n");
        return app;
    }
}
