; Tunesmith's Windows installer (NSIS 3).  Build after PyInstaller:
;   makensis /DVERSION=0.1.0 /DBUNDLE_DIR=dist\tunesmith [/DICON=installer\windows\tunesmith.ico]
;            [/DFLAVOR_SUFFIX=-cpu] [/DOUT_FILE=dist\tunesmith-0.1.0-windows-x64-setup.exe] installer\windows\tunesmith.nsi
; Installs the one-folder bundle into Program Files, adds a Start menu folder (Tunesmith, its
; self-test, Uninstall) and an entry in Settings > Apps.  The uninstaller removes the program files
; only: runs, exports, logs and settings live in the user's profile and stay.
; Payload limit: NSIS installers hold at most 2 GB of compressed data (installer/README.md).

Unicode true
ManifestDPIAware true
SetCompressor /SOLID lzma
SetCompressorDictSize 64

!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!ifndef BUNDLE_DIR
  !error "Pass /DBUNDLE_DIR=<folder holding tunesmith.exe and _internal> (PyInstaller's dist\tunesmith)"
!endif
!ifndef FLAVOR_SUFFIX
  !define FLAVOR_SUFFIX ""
!endif
!ifndef OUT_FILE
  !define OUT_FILE "tunesmith${FLAVOR_SUFFIX}-${VERSION}-windows-x64-setup.exe"
!endif

!define APP_NAME "Tunesmith"
!define PUBLISHER "Tunesmith developers"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Tunesmith"
!define APP_KEY "Software\Tunesmith"

Name "${APP_NAME} ${VERSION}"
OutFile "${OUT_FILE}"
InstallDir "$PROGRAMFILES64\${APP_NAME}"
InstallDirRegKey HKLM "${APP_KEY}" "InstallDir"
RequestExecutionLevel admin
BrandingText "${APP_NAME} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

!include "MUI2.nsh"
!include "x64.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING
!define MUI_WELCOMEPAGE_TEXT "This installs ${APP_NAME} ${VERSION}: fine-tune an open LLM on your own data, then chat with it.$\r$\n$\r$\nIt needs about 6 GB of disk space. An NVIDIA GPU (RTX 20 series or newer) with a recent driver makes training fast; without one, Tunesmith trains small models on the CPU.$\r$\n$\r$\nClick Next to continue."
!define MUI_FINISHPAGE_RUN "$INSTDIR\tunesmith.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME}"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${APP_NAME} needs 64-bit Windows 10 or newer." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  ; A per-machine install: Start menu entries for every user (ProgramData), not only the admin's.
  SetShellVarContext all
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Section "${APP_NAME}" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; An update must not keep libraries of the previous version: replace the program folder's contents.
  RMDir /r "$INSTDIR\_internal"
  File /r "${BUNDLE_DIR}\*.*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"

  ; Start menu: the app, a self-test that keeps its window open, and the uninstaller.
  CreateDirectory "$SMPROGRAMS\${APP_NAME}"
  CreateShortcut "$SMPROGRAMS\${APP_NAME}\${APP_NAME}.lnk" "$INSTDIR\tunesmith.exe" "" "$INSTDIR\tunesmith.exe" 0
  CreateShortcut "$SMPROGRAMS\${APP_NAME}\${APP_NAME} self-test.lnk" "$SYSDIR\cmd.exe" \
    '/k ""$INSTDIR\tunesmith-cli.exe" --self-test"' "$INSTDIR\tunesmith.exe" 0
  CreateShortcut "$SMPROGRAMS\${APP_NAME}\Uninstall ${APP_NAME}.lnk" "$INSTDIR\Uninstall.exe"

  ; Settings > Apps (Add/Remove Programs).
  WriteRegStr HKLM "${APP_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\tunesmith.exe"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKLM "${UNINST_KEY}" "EstimatedSize" "$0"
SectionEnd

Section "Uninstall"
  Delete "$SMPROGRAMS\${APP_NAME}\${APP_NAME}.lnk"
  Delete "$SMPROGRAMS\${APP_NAME}\${APP_NAME} self-test.lnk"
  Delete "$SMPROGRAMS\${APP_NAME}\Uninstall ${APP_NAME}.lnk"
  RMDir "$SMPROGRAMS\${APP_NAME}"
  ; Only what the installer put there.  Never RMDir /r "$INSTDIR": the user may have chosen a folder
  ; that holds their own files, and runs/exports saved inside it must survive.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\tunesmith.exe"
  Delete "$INSTDIR\tunesmith-cli.exe"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINST_KEY}"
  DeleteRegKey HKLM "${APP_KEY}"
SectionEnd
