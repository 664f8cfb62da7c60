REM Without NSSM, with sc.exe (elevated prompt). sc.exe expects a program that speaks the
REM Windows service protocol and stops one that does not after about 30 s, so prefer NSSM.
sc.exe create {{service}} binPath= {{sc_command}} start= auto DisplayName= {{display_name}}
sc.exe description {{service}} {{description}}
sc.exe failure {{service}} reset= 86400 actions= restart/10000/restart/10000/restart/10000
reg.exe add {{registry_key}} /v Environment /t REG_MULTI_SZ /d {{sc_environment}} /f
sc.exe start {{service}}
